//! Which modem becomes a member's home: the balancing rule behind sticky sender, applied when a
//! member joins by an admin command or an import (`community::service`).
//!
//! Every text to a member goes out through their home modem, so their phone shows one
//! conversation with one number (the claim query in `store/outbox/claim.rs` enforces it at send
//! time). A new home goes to the eligible modem with the fewest members, ties to the lowest index,
//! so the assignment is balanced and deterministic; a batch updates the counts as it goes, so an
//! import of 1,000 members spreads evenly instead of landing on the emptiest modem.
//!
//! Geomatch (a modem whose own number shares the member's country code, then up to three leading
//! national digits as a proxy for the area code, wins first, so a local number texts local
//! members) is implemented and tested but no configuration key turns it on yet: the one caller
//! passes `geomatch = false`.
//!
//! Pure: no store, no clock. The inbound path (a stranger texting in) does not come here: the
//! modem they texted becomes their home (`daemon::inbound`).

/// A modem as a candidate home for members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeCandidate {
    /// The SIM's own number, for geomatch.
    pub number: Option<String>,
    /// Disabled or failed modems get no new members.
    pub eligible: bool,
    /// Members whose home it is now.
    pub members: u64,
}

/// (same country code, common leading national digits up to 3): the geomatch tier.
fn geo_score(member: Option<&phonenumber::PhoneNumber>, modem: Option<&str>) -> (bool, usize) {
    let (Some(member), Some(modem)) =
        (member, modem.and_then(|n| phonenumber::parse(None, n).ok()))
    else {
        return (false, 0);
    };
    if member.code().value() != modem.code().value() {
        return (false, 0);
    }
    let a = member.national().value().to_string();
    let b = modem.national().value().to_string();
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (true, common.min(3))
}

fn best_home(
    member: Option<&phonenumber::PhoneNumber>,
    modems: &[HomeCandidate],
    geomatch: bool,
) -> Option<usize> {
    modems
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eligible)
        .min_by_key(|(i, c)| {
            let score = if geomatch {
                geo_score(member, c.number.as_deref())
            } else {
                (false, 0)
            };
            (std::cmp::Reverse(score), c.members, *i)
        })
        .map(|(i, _)| i)
}

/// The home modem for a new member: balanced (fewest members, then lowest index); with
/// `geomatch`, modems sharing the member's country code and leading digits first.
pub fn assign_home(member: &str, modems: &[HomeCandidate], geomatch: bool) -> Option<usize> {
    let parsed = if geomatch {
        phonenumber::parse(None, member).ok()
    } else {
        None
    };
    best_home(parsed.as_ref(), modems, geomatch)
}

/// Homes for a batch of imported members, updating `modems[..].members` as it goes so the batch
/// spreads evenly.
pub fn assign_homes(
    members: &[&str],
    modems: &mut [HomeCandidate],
    geomatch: bool,
) -> Vec<Option<usize>> {
    members
        .iter()
        .map(|m| {
            let home = assign_home(m, modems, geomatch);
            if let Some(c) = home.and_then(|h| modems.get_mut(h)) {
                c.members += 1;
            }
            home
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(number: Option<&str>, members: u64) -> HomeCandidate {
        HomeCandidate {
            number: number.map(str::to_string),
            eligible: true,
            members,
        }
    }

    #[test]
    fn homes_are_balanced_with_deterministic_ties() {
        let mut modems = vec![cand(None, 2), cand(None, 0), cand(None, 0)];
        let homes = assign_homes(
            &[
                "+15551230001",
                "+15551230002",
                "+15551230003",
                "+15551230004",
            ],
            &mut modems,
            false,
        );
        assert_eq!(homes, vec![Some(1), Some(2), Some(1), Some(2)]);
        assert_eq!(
            modems.iter().map(|c| c.members).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        modems[0].eligible = false;
        assert_eq!(assign_home("+15551230005", &modems, false), Some(1));
        let none: Vec<HomeCandidate> = vec![];
        assert_eq!(assign_home("+1", &none, false), None);
    }

    #[test]
    fn geomatch_prefers_same_country_then_area_code() {
        let modems = vec![
            cand(Some("+4915112345678"), 0), // Germany
            cand(Some("+13125550100"), 5),   // Chicago 312
            cand(Some("+12125550100"), 1),   // New York 212
        ];
        assert_eq!(assign_home("+13125550199", &modems, true), Some(1));
        assert_eq!(assign_home("+12125550199", &modems, true), Some(2));
        assert_eq!(assign_home("+4917612345678", &modems, true), Some(0));
        // Another US area code: same country beats Germany; then balance.
        assert_eq!(assign_home("+14155550199", &modems, true), Some(2));
        // Without geomatch, balance only.
        assert_eq!(assign_home("+13125550199", &modems, false), Some(0));
        // An unparsable number still gets a home.
        assert_eq!(assign_home("not a number", &modems, true), Some(0));
    }

    proptest! {
        /// Balanced: after assigning any batch to fresh modems, counts differ by at most one.
        #[test]
        fn assignment_is_balanced(n_modems in 1usize..10, n_members in 0usize..200) {
            let mut modems: Vec<HomeCandidate> = (0..n_modems).map(|_| cand(None, 0)).collect();
            let numbers: Vec<String> = (0..n_members).map(|i| format!("+1555{i:07}")).collect();
            let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();
            let homes = assign_homes(&refs, &mut modems, false);
            prop_assert!(homes.iter().all(Option::is_some));
            let max = modems.iter().map(|c| c.members).max().unwrap_or(0);
            let min = modems.iter().map(|c| c.members).min().unwrap_or(0);
            prop_assert!(max - min <= 1);
        }
    }
}
