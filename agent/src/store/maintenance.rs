//! Maintenance mode per app, in the store's `maintenance` tree keyed by app name:
//! kept across restarts of haloyd so that the routes it rebuilds keep answering 503.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, io};

/// An app's maintenance mode that is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    /// When it was turned on.
    pub since_ms: u64,
    /// Shown on the page; may be empty.
    #[serde(default)]
    pub message: String,
    /// The app's own page (HTML) instead of the default one.
    #[serde(default)]
    pub page: Option<String>,
}

impl Store {
    fn maintenance_tree(&self) -> Result<sled::Tree, StoreError> {
        self.db.open_tree("maintenance").map_err(io)
    }

    /// The app's maintenance mode, `None` when it is off.
    pub fn maintenance(&self, app: &str) -> Result<Option<Maintenance>, StoreError> {
        let value = self.maintenance_tree()?.get(app.as_bytes()).map_err(io)?;
        value
            .map(|v| serde_json::from_slice(&v).map_err(io))
            .transpose()
    }

    /// Turns the app's maintenance mode on (`Some`) or off (`None`), durably.
    pub fn set_maintenance(
        &self,
        app: &str,
        maintenance: Option<&Maintenance>,
    ) -> Result<(), StoreError> {
        let tree = self.maintenance_tree()?;
        match maintenance {
            Some(m) => {
                let value = serde_json::to_vec(m).map_err(io)?;
                tree.insert(app.as_bytes(), value).map_err(io)?;
            }
            None => {
                tree.remove(app.as_bytes()).map_err(io)?;
            }
        }
        self.db.flush().map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_survives_reopening_and_turns_off() {
        let dir = tempfile::tempdir().unwrap();
        let on = Maintenance {
            since_ms: 42,
            message: "back at noon".into(),
            page: Some("<p>{{message}}</p>".into()),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.maintenance("web").unwrap(), None);
            store.set_maintenance("web", Some(&on)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.maintenance("web").unwrap(), Some(on));
        assert_eq!(store.maintenance("api").unwrap(), None);
        store.set_maintenance("web", None).unwrap();
        assert_eq!(store.maintenance("web").unwrap(), None);
    }
}
