//! The translation between Haloy's container spec and Docker's bodies; the calls
//! themselves are tested against a real daemon in `tests/docker.rs`.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerConfig, ContainerInspectResponse, ContainerState as DockerState,
    ContainerStateStatusEnum, MountType, NetworkSettings, PortBinding, RestartPolicyNameEnum,
};
use haloy_api::spec::{VolumeMount, VolumeSource};

use super::{create_body, info};
use crate::runtime::{ContainerSpec, ContainerState, labels};

fn spec() -> ContainerSpec {
    ContainerSpec {
        name: "web-d1-1".into(),
        image: "web:1".into(),
        env: vec![("GREETING".into(), "hi there".into())],
        labels: BTreeMap::from([(labels::APP.into(), "web".into())]),
        network: "haloy-public".into(),
        volumes: vec![VolumeMount {
            source: VolumeSource::Named("web-data".into()),
            container_path: "/data".into(),
            options: vec![],
        }],
        resources: Default::default(),
        alias: None,
        port: 8080,
    }
}

#[test]
fn limits_and_the_alias_reach_docker() {
    let mut limited = spec();
    limited.resources = haloy_api::spec::Resources {
        memory_bytes: Some(64 << 20),
        nano_cpus: Some(500_000_000),
    };
    limited.alias = Some("db".into());
    let body = create_body(&limited).unwrap();
    let host = body.host_config.unwrap();
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(
        endpoints["haloy-public"].aliases,
        Some(vec!["db".to_string()])
    );
    let plain = create_body(&spec()).unwrap().host_config.unwrap();
    assert_eq!((plain.memory, plain.nano_cpus), (None, None));
}

#[test]
fn the_body_publishes_the_app_port_on_loopback_at_a_port_docker_picks() {
    let body = create_body(&spec()).unwrap();
    assert_eq!(body.image.as_deref(), Some("web:1"));
    assert_eq!(body.env.unwrap(), ["GREETING=hi there"]);
    assert_eq!(body.labels.unwrap()[labels::APP], "web");
    assert_eq!(body.exposed_ports.unwrap(), ["8080/tcp"]);
    let host = body.host_config.unwrap();
    let bindings = host.port_bindings.unwrap()["8080/tcp"].clone().unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(bindings[0].host_port.as_deref(), Some(""));
    assert_eq!(host.init, Some(true));
    assert_eq!(
        host.restart_policy.unwrap().name,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED)
    );
    assert_eq!(host.network_mode.as_deref(), Some("haloy-public"));
    assert_eq!(host.mounts.unwrap()[0].typ, Some(MountType::VOLUME));
    assert_eq!(host.binds, None);
    let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
    assert!(endpoints.contains_key("haloy-public"));
}

fn inspected(status: ContainerStateStatusEnum, ports: &[(&str, &str)]) -> ContainerInspectResponse {
    let ports = ports
        .iter()
        .map(|(key, host_port)| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host_port.to_string()),
            };
            (key.to_string(), Some(vec![binding]))
        })
        .collect();
    ContainerInspectResponse {
        id: Some("abc".into()),
        name: Some("/web-d1-1".into()),
        image: Some("sha256:0123".into()),
        config: Some(ContainerConfig {
            image: Some("web:1".into()),
            labels: Some(HashMap::from([(labels::PORT.into(), "8080".into())])),
            ..Default::default()
        }),
        state: Some(DockerState {
            status: Some(status),
            exit_code: Some(3),
            ..Default::default()
        }),
        network_settings: Some(NetworkSettings {
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn inspect_answers_become_container_info() {
    let running = info(inspected(
        ContainerStateStatusEnum::RUNNING,
        &[("8080/tcp", "32768"), ("9090/tcp", "32769")],
    ));
    assert_eq!(running.id, "abc");
    assert_eq!(running.name, "web-d1-1");
    assert_eq!(running.image, "web:1");
    assert_eq!(running.state, ContainerState::Running);
    assert_eq!(running.host_port, Some(32768), "the labelled port wins");

    let exited = info(inspected(ContainerStateStatusEnum::EXITED, &[]));
    assert_eq!(exited.state, ContainerState::Exited(3));
    assert_eq!(exited.host_port, None);

    let paused = info(inspected(ContainerStateStatusEnum::PAUSED, &[]));
    assert_eq!(paused.state, ContainerState::Other("paused".into()));
}

#[test]
fn without_a_port_label_only_a_single_published_port_counts() {
    let mut one = inspected(ContainerStateStatusEnum::RUNNING, &[("80/tcp", "40000")]);
    one.config.as_mut().unwrap().labels = None;
    assert_eq!(info(one).host_port, Some(40000));

    let mut two = inspected(
        ContainerStateStatusEnum::RUNNING,
        &[("80/tcp", "40000"), ("81/tcp", "40001")],
    );
    two.config.as_mut().unwrap().labels = None;
    assert_eq!(info(two).host_port, None);
}
