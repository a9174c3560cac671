//! The built-in, read-only System policies every emulated account has. The catalogue itself
//! (names, descriptions, documents) lives in [`crate::policy::system`], shared with the
//! lints; this module only gives it the emulator's state shape. Data only.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::state::{DocText, SystemPolicy};
use crate::policy::system::CATALOGUE;

/// The built-in System policies by name.
pub fn builtin() -> &'static BTreeMap<String, SystemPolicy> {
    static CELL: OnceLock<BTreeMap<String, SystemPolicy>> = OnceLock::new();
    CELL.get_or_init(|| {
        CATALOGUE
            .iter()
            .map(|d| {
                (
                    d.name.to_string(),
                    SystemPolicy {
                        description: d.description.to_string(),
                        document: DocText(d.document.to_string()),
                        default_version: "v1".to_string(),
                        create_date: "2015-04-28T03:21:23Z".to_string(),
                    },
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalogue_policy_is_built_in() {
        let b = super::builtin();
        assert_eq!(b.len(), crate::policy::system::CATALOGUE.len());
        for d in crate::policy::system::CATALOGUE {
            assert_eq!(b[d.name].document.0, d.document, "{}", d.name);
        }
    }
}
