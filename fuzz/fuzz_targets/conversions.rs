//! Proto → domain conversions on any bytes a client could send as a DeployStart or
//! a RollbackTargets request: decoding may fail, converting may refuse, nothing
//! panics, and an accepted spec converts back and again to the same spec.

#![no_main]

use haloy_api::spec::{AppSpec, ImageSpec};
use haloy_api::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(start) = v1::DeployStart::decode(data)
        && let Some(pb) = start.spec
        && let Ok(spec) = AppSpec::try_from(pb)
    {
        let again = AppSpec::try_from(v1::AppSpec::from(spec.clone()));
        assert_eq!(again.as_ref().ok(), Some(&spec), "{again:?}");
    }
    if let Ok(request) = v1::RollbackTargetsRequest::decode(data)
        && let Some(image) = request.image
    {
        let _ = ImageSpec::try_from(image);
    }
});
