//! Which modem becomes a member's home, and why: the balancing rule behind sticky sender and
//! geomatch, applied when a member joins by an admin command or an import (`commands::members`).
//!
//! Every text to a member goes out through their home modem, so their phone shows one
//! conversation with one number (the claim query in `store/outbox/claim.rs` enforces it at send
//! time). A new home goes to the eligible modem with the fewest members, ties to the lowest index,
//! so the assignment is balanced and deterministic; a batch updates the counts as it goes, so an
//! import of 1,000 members spreads evenly instead of landing on the emptiest modem.
//!
//! Geomatch (`[dispatch] geomatch = true`, docs/dispatch.md): a modem whose own number has the
//! member's country code and area code wins first, then one with the member's country code, then
//! balance; within a tier, balance decides. The area code is taken as the first three national
//! digits (leading zeros aside): exactly the NANP area code, and a prefix proxy elsewhere (the
//! numbering plan, `crate::numbering`, carries no area-code lengths, and a shared three-digit
//! prefix is what "a local number" means to most members). [`HomeReason`] says which tier decided, for `members` to show.
//!
//! Pure: no store, no clock. The inbound path (a stranger texting in) does not come here: the
//! modem they texted becomes their home (`daemon::inbound`, reason [`HomeReason::Sticky`]).

use crate::numbering::{self, Parsed};

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

/// Why a member's home modem is the one it is (stored with the home, shown by `members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HomeReason {
    /// Geomatch: the modem's number has the member's country and area code.
    Geomatch,
    /// Geomatch: the modem's number has the member's country code (no area code matched).
    Country,
    /// The modem with the fewest members.
    Balance,
    /// The modem the member first texted (a join by SMS).
    Sticky,
    /// The home moved to another modem after the old one was down (`move_home_on_failover`).
    /// The store reports it for a home that changed without a recorded reason.
    Failover,
}

impl HomeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HomeReason::Geomatch => "geomatch",
            HomeReason::Country => "country",
            HomeReason::Balance => "balance",
            HomeReason::Sticky => "sticky",
            HomeReason::Failover => "failover",
        }
    }
}

/// A chosen home: the candidate's index and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomeChoice {
    pub index: usize,
    pub reason: HomeReason,
}

/// Digits of the national number taken as the area code.
const AREA_DIGITS: usize = 3;

/// The geomatch tier of a modem for a member: (same country, same area code).
fn geo_tier(member: Option<&Parsed>, modem: Option<&str>) -> (bool, bool) {
    let (Some(member), Some(modem)) = (member, modem.and_then(international)) else {
        return (false, false);
    };
    if member.code != modem.code {
        return (false, false);
    }
    // Italy's leading 0 is part of the number but not of an area code's first digits.
    let a = member.national.trim_start_matches('0');
    let b = modem.national.trim_start_matches('0');
    let area = a.len() > AREA_DIGITS
        && b.len() > AREA_DIGITS
        && a.get(..AREA_DIGITS) == b.get(..AREA_DIGITS);
    (true, area)
}

/// A number in international form (`+` and country code), as members' and modems' numbers are
/// stored; anything else has no country to match.
fn international(number: &str) -> Option<Parsed> {
    numbering::parse(number, None).ok()
}

fn best_home(member: Option<&Parsed>, modems: &[HomeCandidate]) -> Option<HomeChoice> {
    modems
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eligible)
        .map(|(i, c)| (i, c, geo_tier(member, c.number.as_deref())))
        .min_by_key(|(i, c, tier)| (std::cmp::Reverse(*tier), c.members, *i))
        .map(|(index, _, tier)| HomeChoice {
            index,
            reason: match tier {
                (_, true) => HomeReason::Geomatch,
                (true, false) => HomeReason::Country,
                (false, _) => HomeReason::Balance,
            },
        })
}

/// The home modem for a new member and why: balanced (fewest members, then lowest index); with
/// `geomatch`, modems sharing the member's country and area code first, then the country.
pub fn choose_home(member: &str, modems: &[HomeCandidate], geomatch: bool) -> Option<HomeChoice> {
    let parsed = if geomatch {
        international(member)
    } else {
        None
    };
    best_home(parsed.as_ref(), modems)
}

/// [`choose_home`] without the reason.
pub fn assign_home(member: &str, modems: &[HomeCandidate], geomatch: bool) -> Option<usize> {
    choose_home(member, modems, geomatch).map(|c| c.index)
}

/// Homes for a batch of imported members, updating `modems[..].members` as it goes so the batch
/// spreads evenly.
pub fn assign_homes(
    members: &[&str],
    modems: &mut [HomeCandidate],
    geomatch: bool,
) -> Vec<Option<HomeChoice>> {
    members
        .iter()
        .map(|m| {
            let home = choose_home(m, modems, geomatch);
            if let Some(c) = home.and_then(|h| modems.get_mut(h.index)) {
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
        let idx: Vec<_> = homes.iter().map(|h| h.map(|h| h.index)).collect();
        assert_eq!(idx, vec![Some(1), Some(2), Some(1), Some(2)]);
        assert!(
            homes
                .iter()
                .flatten()
                .all(|h| h.reason == HomeReason::Balance)
        );
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
        // 312 and 310 share two digits, no area code: balance within the country.
        assert_eq!(assign_home("+13105550199", &modems, true), Some(2));
        let why = |n: &str| choose_home(n, &modems, true).map(|c| c.reason);
        assert_eq!(why("+13125550199"), Some(HomeReason::Geomatch));
        assert_eq!(why("+14155550199"), Some(HomeReason::Country));
        assert_eq!(why("+33612345678"), Some(HomeReason::Balance));
        assert_eq!(
            choose_home("+13125550199", &modems, false).map(|c| c.reason),
            Some(HomeReason::Balance)
        );
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
