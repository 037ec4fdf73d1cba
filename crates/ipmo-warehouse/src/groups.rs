//! Custom groups (localities, a peer set of ICBs…) kept in `groups.toml` in the warehouse folder:
//! the measures engine computes values for them, and the server and the analyse command read them,
//! so the file is read and written here rather than by one command.

use crate::{Warehouse, WarehouseError};
use ipmo_measures::compute::GroupSet;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The file's name in the warehouse folder.
pub const GROUPS_FILE: &str = "groups.toml";

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct GroupsFile {
    #[serde(default)]
    group_set: Vec<GroupSet>,
}

/// A group set id becomes part of an organisation type (`group:<id>`), so it is kept plain.
pub fn is_group_set_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl Warehouse {
    /// Where the groups file is.
    pub fn groups_path(&self) -> PathBuf {
        self.root().join(GROUPS_FILE)
    }

    /// The custom group sets, and an input tag naming the file's content (`groups.toml#<hash>`)
    /// for the months whose measure results depend on it; no sets and no tag without a file.
    pub fn groups(&self) -> Result<(Vec<GroupSet>, Option<String>), WarehouseError> {
        let path = self.groups_path();
        let corrupt = |detail: String| WarehouseError::Corrupt { path: path.display().to_string(), detail };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: GroupsFile = toml::from_str(&text)
                    .map_err(|e| corrupt(format!("{e}\nhint: fix the file or rebuild it with `ipmo groups add`")))?;
                if let Some(set) = file.group_set.iter().find(|s| !is_group_set_id(&s.id)) {
                    return Err(corrupt(format!("group set id \"{}\" must be letters, digits, - and _", set.id)));
                }
                let hash: String = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
                Ok((file.group_set, Some(format!("groups.toml#{}", &hash[..16]))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), None)),
            Err(e) => Err(WarehouseError::io(&path, e)),
        }
    }

    /// Replaces the groups file with `sets`, atomically (written beside it, then renamed).
    pub fn save_groups(&self, sets: Vec<GroupSet>) -> Result<PathBuf, WarehouseError> {
        let path = self.groups_path();
        let text = toml::to_string_pretty(&GroupsFile { group_set: sets })
            .map_err(|e| WarehouseError::Corrupt { path: path.display().to_string(), detail: e.to_string() })?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| WarehouseError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| WarehouseError::io(&path, e))?;
        Ok(path)
    }
}
