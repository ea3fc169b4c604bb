//! Custom member fields (`member_fields`): the answers to configured onboarding questions that
//! have no column of their own (`shirt_size`), and the same columns of a CSV import.
//!
//! Only the statements live here; which names are allowed is the configuration's business (the
//! store keeps whatever name it is given, so a field removed from the config keeps its stored
//! answers and reappears when the question comes back). Values are stored as given; segment
//! conditions compare them with ASCII case folding (`members.rs`, like city and region).

use std::collections::BTreeMap;

use crate::store::db::{Conn, params};

/// Stores a new member's fields.
pub(super) fn insert_fields(
    tx: &Conn,
    member_id: i64,
    fields: &BTreeMap<String, String>,
) -> crate::store::db::DbResult<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO member_fields (member_id, field, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (member_id, field) DO UPDATE SET value = excluded.value",
    )?;
    for (field, value) in fields {
        st.execute(params![member_id, field, value])?;
    }
    Ok(())
}

/// Sets (`Some`) or clears (`None`) each named field and bumps the member's `updated_at`.
pub(super) fn update_fields(
    tx: &Conn,
    member_id: i64,
    fields: &BTreeMap<String, Option<String>>,
    now: i64,
) -> crate::store::db::DbResult<()> {
    for (field, value) in fields {
        match value {
            Some(v) => {
                tx.prepare_cached(
                    "INSERT INTO member_fields (member_id, field, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (member_id, field) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![member_id, field, v])?;
            }
            None => {
                tx.prepare_cached("DELETE FROM member_fields WHERE member_id = ?1 AND field = ?2")?
                    .execute(params![member_id, field])?;
            }
        }
    }
    tx.prepare_cached("UPDATE members SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![member_id, now])?;
    Ok(())
}

#[cfg(test)]
crate::store::testing::backend_tests! {
// Repeated inside: clippy allows `unwrap` in test helpers only under a visible `cfg(test)`.
#[cfg(test)]
mod tests {
    use crate::store::{MemberUpdate, NewMember, Segment};
    use crate::model::MemberStatus;
    use crate::store::ConsentSource;

    #[test]
    fn fields_are_stored_updated_cleared_and_segmentable() {
        let s = fresh();
        let mut m = NewMember {
            number: "+15551230001".into(),
            status: Some(MemberStatus::Active),
            home_modem: Some("m0".into()),
            home_reason: Some("geomatch".into()),
            ..NewMember::default()
        };
        m.fields.insert("shirt_size".into(), "L".into());
        let got = s.add_member(&m, ConsentSource::Cli, 1).unwrap();
        assert_eq!(got.fields.get("shirt_size").map(String::as_str), Some("L"));
        assert_eq!(got.home_reason.as_deref(), Some("geomatch"));
        s.add_member(
            &NewMember {
                number: "+15551230002".into(),
                status: Some(MemberStatus::Active),
                ..NewMember::default()
            },
            ConsentSource::Cli,
            2,
        )
        .unwrap();
        let seg = |v: &str| Segment {
            fields: vec![("shirt_size".into(), v.into())],
            ..Segment::default()
        };
        assert_eq!(s.segment_numbers(&seg("l")).unwrap(), vec!["+15551230001"]);
        assert!(s.segment_numbers(&seg("M")).unwrap().is_empty());
        assert_eq!(s.count_members(&seg("L")).unwrap(), 1);

        let mut u = MemberUpdate::default();
        u.fields.insert("shirt_size".into(), Some("M".into()));
        u.fields.insert("diet".into(), Some("vegan".into()));
        let got = s.update_member("+15551230002", &u, 3).unwrap();
        assert_eq!(got.fields.len(), 2);
        assert_eq!(s.segment_numbers(&seg("m")).unwrap(), vec!["+15551230002"]);
        let mut u = MemberUpdate::default();
        u.fields.insert("diet".into(), None);
        let got = s.update_member("+15551230002", &u, 4).unwrap();
        assert_eq!(got.fields.keys().collect::<Vec<_>>(), vec!["shirt_size"]);
        // Fields go with the member.
        assert!(
            s.remove_member("+15551230001", ConsentSource::Cli, 5)
                .unwrap()
        );
        assert!(s.segment_numbers(&seg("L")).unwrap().is_empty());
    }

    #[test]
    fn a_home_moved_without_a_reason_reads_as_failover() {
        let s = fresh();
        let m = NewMember {
            number: "+15551230001".into(),
            status: Some(MemberStatus::Active),
            home_modem: Some("m0".into()),
            home_reason: Some("balance".into()),
            ..NewMember::default()
        };
        s.add_member(&m, ConsentSource::Cli, 1).unwrap();
        let moved = MemberUpdate {
            home_modem: Some(Some("m1".into())),
            ..MemberUpdate::default()
        };
        let got = s.update_member("+15551230001", &moved, 2).unwrap();
        assert_eq!(got.home_reason.as_deref(), Some("failover"));
        let balance = MemberUpdate {
            home_modem: Some(Some("m0".into())),
            home_reason: Some(Some("balance".into())),
            ..MemberUpdate::default()
        };
        let got = s.update_member("+15551230001", &balance, 3).unwrap();
        assert_eq!(got.home_reason.as_deref(), Some("balance"));
    }
}
}
