//! Queries of the `meta` table: the data directory's identity and the first-run setup code.

use rusqlite::{OptionalExtension, named_params};

use super::Database;
use crate::error::Result;

const SELECT_SETUP_CODE: &str = "SELECT setup_code_sealed FROM meta WHERE id = 1";
const SET_SETUP_CODE: &str = "UPDATE meta SET setup_code_sealed = :sealed WHERE id = 1";
/// Run in the transaction that creates the first account: the code is good for one setup.
pub(crate) const CLEAR_SETUP_CODE: &str = "UPDATE meta SET setup_code_sealed = NULL WHERE id = 1";

impl Database {
    /// The first-run setup code, sealed under the master key, while setup is pending.
    pub fn setup_code_sealed(&self) -> Result<Option<Vec<u8>>> {
        Ok(self
            .lock()
            .prepare_cached(SELECT_SETUP_CODE)?
            .query_row([], |r| r.get(0))
            .optional()?
            .flatten())
    }

    pub fn set_setup_code_sealed(&self, sealed: Option<&[u8]>) -> Result<()> {
        self.lock()
            .prepare_cached(SET_SETUP_CODE)?
            .execute(named_params! {":sealed": sealed})?;
        Ok(())
    }
}
