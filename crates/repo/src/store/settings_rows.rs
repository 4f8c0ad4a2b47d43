//! Diesel row types for the settings table and their conversion to domain types,
//! all generated from the domain's one settings list
//! ([`idstore_domain::settings_list`]).

use diesel::prelude::*;
use idstore_domain::settings::{SearchBox, parse_search_boxes, search_boxes_json};
use idstore_domain::{Change, Settings, SettingsChange, SettingsError};
use idstore_schema::settings;

/// How a setting's type is stored in its column.
pub(crate) trait Stored: Sized {
    /// The column's Rust type.
    type Column;
    /// The column value of a setting.
    fn store(&self) -> Self::Column;
    /// The setting of a column value.
    fn load(column: Self::Column) -> Result<Self, SettingsError>;
}

macro_rules! stored_as_itself {
    ($($ty:ty),*) => {$(
        impl Stored for $ty {
            type Column = $ty;
            fn store(&self) -> $ty {
                self.clone()
            }
            fn load(column: $ty) -> Result<$ty, SettingsError> {
                Ok(column)
            }
        }
    )*};
}
stored_as_itself!(String, bool, i32);

/// `searchBoxes` is stored as the JSON text the app writes.
impl Stored for Vec<SearchBox> {
    type Column = String;
    fn store(&self) -> String {
        search_boxes_json(self)
    }
    fn load(column: String) -> Result<Self, SettingsError> {
        parse_search_boxes(&column)
    }
}

fn change<T: Stored>(c: &Change<T>) -> Option<Option<T::Column>> {
    match c {
        Change::Keep => None,
        Change::Set(v) => Some(Some(v.store())),
        Change::Clear => Some(None),
    }
}

macro_rules! settings_rows {
    ($( $field:ident, $variant:ident, $column:ident, $ty:ty; )*) => {
        /// Every `settings` column, in the generated schema's order (the order of
        /// [`SettingsRow`]'s fields).
        pub(crate) const SETTINGS_COLUMNS: &[&str] = &["id", "accountDid", $(stringify!($column),)*];

        /// A `settings` row as stored.
        #[derive(Debug, Clone, Queryable, Selectable)]
        #[diesel(table_name = settings, check_for_backend(diesel::sqlite::Sqlite))]
        pub(crate) struct SettingsRow {
            // `id` and `accountDid` are read so the row matches `settings::all_columns`,
            // which the override half of `account_settings` selects positionally.
            pub id: i32,
            #[allow(dead_code)]
            #[diesel(column_name = accountDid)]
            pub account_did: Option<String>,
            $(
                #[diesel(column_name = $column)]
                pub $field: Option<<$ty as Stored>::Column>,
            )*
        }

        impl SettingsRow {
            /// The typed settings of this row; a stored value that does not read as
            /// its setting's type is an error naming the row.
            pub fn into_settings(self) -> Result<Settings, crate::error::Error> {
                let id = self.id;
                let decoded = (|| -> Result<Settings, SettingsError> {
                    let mut s = Settings::default();
                    $(s.$field = self.$field.map(<$ty as Stored>::load).transpose()?;)*
                    Ok(s)
                })();
                decoded.map_err(|e| crate::error::Error::stored_value(format_args!("settings row {id}"), e))
            }
        }

        /// An update of the settings columns: `None` leaves a column, `Some(None)`
        /// stores NULL. `id` and `accountDid` are not here, so no change can move a row.
        #[derive(Debug, Clone, Default, AsChangeset)]
        #[diesel(table_name = settings)]
        pub(crate) struct SettingsChangeset {
            $(
                #[diesel(column_name = $column)]
                $field: Option<Option<<$ty as Stored>::Column>>,
            )*
        }

        impl SettingsChangeset {
            /// The column updates of `c` (its active identity part is not a column).
            pub fn from_change(c: &SettingsChange) -> Self {
                SettingsChangeset {
                    $($field: change(&c.$field),)*
                }
            }

            /// True when no column changes (Diesel refuses an empty `SET`).
            pub fn is_noop(&self) -> bool {
                true $(&& self.$field.is_none())*
            }
        }
    };
}

idstore_domain::settings_list!(settings_rows);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_columns_follow_the_migrated_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = crate::Database::open(&dir.path().join("t.sqlite")).unwrap();
        db.migrate(&crate::MigrateOptions::new()).unwrap();
        assert_eq!(
            crate::sql::columns(db.conn(), "settings").unwrap(),
            SETTINGS_COLUMNS
        );
    }

    #[test]
    fn settings_columns_follow_the_generated_table_definition() {
        // Every column `table!` declares, in order, as Diesel writes them.
        let select = diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &settings::table.select(settings::all_columns),
        )
        .to_string();
        let list = select
            .strip_prefix("SELECT ")
            .and_then(|s| s.split(" FROM ").next())
            .expect("a select list");
        let generated: Vec<&str> = list
            .split(", ")
            .map(|c| c.rsplit('.').next().unwrap().trim_matches('`'))
            .collect();
        assert_eq!(generated, SETTINGS_COLUMNS, "{select}");
    }
}
