//! [`auth_core::store::UserStore`] on Diesel: users and their roles.

use super::*;

impl UserStore for DieselStore {
    fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        let role_names = role_set(&user.roles);
        let row = NewUserRow {
            id: id_text(user.id),
            email: &user.email,
            email_key: &user.email_key,
            password_hash: &user.password_hash,
            full_name: user.full_name.as_deref(),
            phone: None,
            is_active: user.is_active,
            organization_id: user.organization_id.map(id_text),
            attributes: "{}",
            created_at: user.now,
            updated_at: user.now,
        };
        write_tx!(self, conn => {
            diesel::insert_into(users::table).values(&row).execute(conn)?;
            assign_roles!(conn, row.id.as_str(), role_names.iter().copied(), user.now);
            let created = find_user!(conn, users::id.eq(row.id.as_str()))?;
            created.ok_or_else(|| Fail::other("inserted user not found"))
        })
        .map_err(Fail::into_store)
    }

    fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        with_conn!(self, conn => { find_user!(conn, users::email_key.eq(email_key)) })
            .map_err(Fail::into_store)
    }

    fn find_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        let id = id_text(id);
        with_conn!(self, conn => { find_user!(conn, users::id.eq(id.as_str())) })
            .map_err(Fail::into_store)
    }

    fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        revoke: Revocation,
        now: i64,
        protect: Option<&str>,
    ) -> StoreResult<Option<UserRecord>> {
        let id = id_text(id);
        let attributes = match &patch.attributes {
            None => None,
            Some(value @ serde_json::Value::Object(_)) => Some(value.to_string()),
            Some(_) => {
                return Err(StoreError::Other(
                    "user attributes must be a JSON object".to_owned(),
                ));
            }
        };
        let changes = UserChanges {
            email: patch.email.as_ref().map(|new| new.email.as_str()),
            email_key: patch.email.as_ref().map(|new| new.email_key.as_str()),
            email_verified_at: patch.email_verified_at,
            password_hash: patch.password_hash.as_deref(),
            full_name: patch.full_name.as_ref().map(Option::as_deref),
            phone: patch.phone.as_ref().map(Option::as_deref),
            is_active: patch.is_active,
            organization_id: patch.organization_id.map(|o| o.map(id_text)),
            attributes,
            updated_at: now,
        };
        let role_names = patch.roles.as_deref().map(role_set);
        let guard = protect.filter(|_| patch.may_demote());
        let stays = |user: &UserRecord| {
            patch.keeps_active_holder(user.is_active, &user.roles, guard.unwrap_or_default())
        };
        write_tx!(self, conn => {
            if let Some(role) = guard {
                guard_last_holder!(conn, id.as_str(), role, stays);
            }
            // A taken email key fails here (unique index): Conflict, all rolled back.
            let updated = diesel::update(users::table.filter(users::id.eq(id.as_str())))
                .set(&changes)
                .execute(conn)?;
            if updated == 0 {
                return Ok(None);
            }
            if let Some(names) = &role_names {
                diesel::delete(user_roles::table.filter(user_roles::user_id.eq(id.as_str())))
                    .execute(conn)?;
                assign_roles!(conn, id.as_str(), names.iter().copied(), now);
            }
            revoke_credentials!(conn, id.as_str(), revoke);
            let user = find_user!(conn, users::id.eq(id.as_str()))?;
            user.ok_or_else(|| Fail::other("updated user not found")).map(Some)
        })
        .map_err(Fail::into_store)
    }

    fn replace_password_hash(
        &self,
        id: Uuid,
        expected: &str,
        new: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let id = id_text(id);
        with_conn!(self, conn => {
            // One conditional statement: atomic on both backends.
            let still_expected = users::table
                .filter(users::id.eq(id.as_str()))
                .filter(users::password_hash.eq(expected));
            let updated = diesel::update(still_expected)
                .set((users::password_hash.eq(new), users::updated_at.eq(now)))
                .execute(conn)?;
            Ok(updated > 0)
        })
        .map_err(Fail::into_store)
    }

    fn delete_user(&self, id: Uuid, protect: Option<&str>) -> StoreResult<bool> {
        let id = id_text(id);
        write_tx!(self, conn => {
            if let Some(role) = protect {
                guard_last_holder!(conn, id.as_str(), role, |_: &UserRecord| false);
            }
            // Sessions (and their refresh tokens), personal and one-time tokens and role
            // assignments go along by ON DELETE CASCADE.
            let deleted = diesel::delete(users::table.filter(users::id.eq(id.as_str())))
                .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserRecord>, u64)> {
        let email_key = query.email_key.as_deref();
        let limit = i64::from(query.limit);
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        read_tx!(self, conn => {
            let mut count = users::table.count().into_boxed();
            let mut page = users::table
                .select(UserRow::as_select())
                .order((users::created_at.asc(), users::id.asc()))
                .limit(limit)
                .offset(offset)
                .into_boxed();
            if let Some(key) = email_key {
                count = count.filter(users::email_key.eq(key));
                page = page.filter(users::email_key.eq(key));
            }
            let total = count.get_result::<i64>(conn)?;
            let rows = page.load::<UserRow>(conn)?;

            let mut roles_of: HashMap<String, Vec<String>> = HashMap::new();
            for chunk in rows.chunks(ROLE_LOOKUP_CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
                let pairs = user_roles::table
                    .inner_join(roles::table)
                    .filter(user_roles::user_id.eq_any(ids))
                    .select((user_roles::user_id, roles::name))
                    .load::<(String, String)>(conn)?;
                for (user_id, name) in pairs {
                    roles_of.entry(user_id).or_default().push(name);
                }
            }
            let users = rows
                .into_iter()
                .map(|row| {
                    let mut roles = roles_of.remove(&row.id).unwrap_or_default();
                    roles.sort_unstable();
                    row.into_record(roles)
                })
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok((users, u64::try_from(total).unwrap_or(0)))
        })
        .map_err(Fail::into_store)
    }

    fn user_roles(&self, user_id: Uuid) -> StoreResult<Vec<RoleRecord>> {
        let user_id = id_text(user_id);
        let mut found = with_conn!(self, conn => {
            user_roles::table
                .inner_join(roles::table)
                .filter(user_roles::user_id.eq(user_id.as_str()))
                .select(RoleRow::as_select())
                .load::<RoleRow>(conn)?
                .into_iter()
                .map(RoleRow::into_record)
                .collect::<Result<Vec<_>, Fail>>()
        })
        .map_err(Fail::into_store)?;
        // Byte order, whatever the database's collation.
        found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }
}
