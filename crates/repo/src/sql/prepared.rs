//! Statements Diesel keeps prepared, cached by their SQL text: Diesel re-prepares
//! every `sql_query` and marks its own `UPDATE` statements unsafe to cache, which
//! on the hot write paths costs more than the rest of the transaction (see
//! BENCHMARKS.md).

use std::marker::PhantomData;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

/// `UPDATE <table> SET <changes> WHERE id = <id>`, which Diesel may keep prepared.
///
/// Diesel marks its own `UPDATE` statements unsafe to cache, so every call re-parses
/// and re-plans them; on the hot write paths that alone costs more than the rest of
/// the transaction (see BENCHMARKS.md). This statement is cached by its SQL text.
pub(crate) struct UpdateById<C> {
    table: &'static str,
    changes: C,
    id: i32,
}

impl<C> UpdateById<C> {
    /// Updates the row `id` of `table` with `changes` (an `AsChangeset` value).
    pub(crate) fn new<T>(table: &'static str, changes: T, id: i32) -> Self
    where
        T: AsChangeset<Changeset = C>,
    {
        UpdateById {
            table,
            changes: changes.as_changeset(),
            id,
        }
    }
}

impl<C> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for UpdateById<C>
where
    C: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        out.push_identifier(self.table)?;
        out.push_sql(" SET ");
        self.changes.walk_ast(out.reborrow())?;
        out.push_sql(" WHERE ");
        out.push_identifier("id")?;
        out.push_sql(" = ");
        out.push_bind_param::<diesel::sql_types::Integer, _>(&self.id)?;
        Ok(())
    }
}

impl<C> diesel::query_builder::QueryId for UpdateById<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C> RunQueryDsl<SqliteConnection> for UpdateById<C> {}

/// A fixed statement with one nullable text parameter, `head ? tail`, typed as
/// returning `ST`. Diesel keeps it prepared, cached by its SQL text (it re-prepares
/// every `sql_query`), so hot paths can use plain SQL.
pub(crate) struct Fixed<'a, ST> {
    head: &'static str,
    bind: Option<&'a str>,
    tail: &'static str,
    returns: PhantomData<ST>,
}

impl<'a, ST> Fixed<'a, ST> {
    /// The statement `head ? tail` with `bind` as its parameter.
    pub(crate) fn new(
        head: &'static str,
        bind: impl Into<Option<&'a str>>,
        tail: &'static str,
    ) -> Self {
        Fixed {
            head,
            bind: bind.into(),
            tail,
            returns: PhantomData,
        }
    }
}

impl<ST> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for Fixed<'_, ST> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(self.head);
        out.push_bind_param::<Nullable<Text>, _>(&self.bind)?;
        out.push_sql(self.tail);
        Ok(())
    }
}

impl<ST> diesel::query_builder::QueryId for Fixed<'_, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> diesel::query_builder::Query for Fixed<'_, ST> {
    type SqlType = ST;
}

impl<ST> RunQueryDsl<SqliteConnection> for Fixed<'_, ST> {}
