//! [`auth_core::store::OrganizationStore`] on Diesel: organizations.

use super::*;

impl OrganizationStore for DieselStore {
    fn create_organization(&self, organization: &OrganizationRecord) -> StoreResult<()> {
        let row = OrganizationRow::from_record(organization);
        with_conn!(self, conn => {
            diesel::insert_into(organizations::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn find_organization(&self, id: Uuid) -> StoreResult<Option<OrganizationRecord>> {
        let id = id_text(id);
        with_conn!(self, conn => {
            organizations::table
                .filter(organizations::id.eq(id.as_str()))
                .select(OrganizationRow::as_select())
                .first::<OrganizationRow>(conn)
                .optional()?
                .map(OrganizationRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRecord>> {
        with_conn!(self, conn => {
            organizations::table
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(OrganizationRow::as_select())
                .load::<OrganizationRow>(conn)?
                .into_iter()
                .map(OrganizationRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }
}
