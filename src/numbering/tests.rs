use super::*;

fn gb() -> &'static Region {
    region("gb").unwrap_or_else(|| panic!("GB in the plan"))
}

fn us() -> &'static Region {
    region("US").unwrap_or_else(|| panic!("US in the plan"))
}

fn e164(text: &str, home: Option<&Region>) -> Option<String> {
    parse(text, home)
        .ok()
        .filter(Parsed::has_possible_length)
        .map(|p| p.e164())
}

#[test]
fn international_forms_need_no_region() {
    assert_eq!(
        e164("+44 7700 900123", None).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(
        e164("(+44) 07700-900123", None).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(
        e164("00 44 7700 900123", Some(gb())).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(
        e164("011 44 7700 900123", Some(us())).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(parse("+999 1234", None), Err(NumberError::CountryCode));
    assert_eq!(
        parse("0044 7700 900123", None),
        Err(NumberError::CountryCode)
    );
}

#[test]
fn national_forms_take_the_region_and_its_prefixes() {
    assert_eq!(
        e164("07700 900123", Some(gb())).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(
        e164("1 312 555 0100", Some(us())).as_deref(),
        Some("+13125550100")
    );
    assert_eq!(
        e164("(312) 555-0100", Some(us())).as_deref(),
        Some("+13125550100")
    );
    // Italy has no national prefix: the 0 is part of the number, also in E.164.
    let it = region("IT");
    assert_eq!(e164("06 1234 5678", it).as_deref(), Some("+390612345678"));
    // An Italian mobile that begins with the country code's digits stays Italian.
    assert_eq!(e164("391 234 5678", it).as_deref(), Some("+393912345678"));
    assert_eq!(parse("3125550100", None), Err(NumberError::CountryCode));
}

#[test]
fn brazil_drops_a_carrier_selection_code_only_before_a_whole_number() {
    let br = region("BR");
    // 0, carrier 21, then area code 11 and a mobile number.
    assert_eq!(
        e164("0 21 11 98765 4321", br).as_deref(),
        Some("+5511987654321")
    );
    // 90 (a collect call) with carrier 15 before a fixed-line number.
    assert_eq!(
        e164("90 15 11 2345 6789", br).as_deref(),
        Some("+551123456789")
    );
    // Rio's area code is 21 too: after the trunk 0 a local number is too short for a carrier.
    assert_eq!(e164("021 2345 6789", br).as_deref(), Some("+552123456789"));
    // A carrier code comes before an area code, and none begins with 0: no number here.
    assert_eq!(e164("021 0000000000", br), None);
    assert_eq!(e164("0 15 0 1198765432", br), None);
    assert_eq!(
        e164("(11) 98765-4321", br).as_deref(),
        Some("+5511987654321")
    );
    assert!(plan::CARRIERS.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn argentina_writes_a_mobile_with_9_instead_of_the_local_15() {
    let ar = region("AR");
    // Buenos Aires (11), then 15, the prefix a mobile is dialled with locally.
    assert_eq!(
        e164("011 15 2345-6789", ar).as_deref(),
        Some("+5491123456789")
    );
    assert_eq!(
        e164("11 15 2345 6789", ar).as_deref(),
        Some("+5491123456789")
    );
    assert_eq!(
        e164("+54 11 15 2345 6789", None).as_deref(),
        Some("+5491123456789")
    );
    // A four-digit area code (Chascomús, 2241) and the number without 15 are unchanged.
    assert_eq!(
        e164("02241 15 12 3456", ar).as_deref(),
        Some("+5492241123456")
    );
    assert_eq!(e164("011 4123 4567", ar).as_deref(), Some("+541141234567"));
    // Too few digits after the 15 for a mobile: refused, not read as a fixed line, unless the
    // digits without a prefix are a whole number themselves.
    assert_eq!(e164("011 15 00 0000", ar), None);
    assert_eq!(e164("348 150 0000", ar).as_deref(), Some("+543481500000"));
}

#[test]
fn regions_of_shared_codes() {
    let region_of_text = |t: &str| parse(t, None).ok().and_then(|p| p.region());
    assert_eq!(region_of_text("+1 312 555 0123"), Some("US"));
    assert_eq!(region_of_text("+1 416 555 0123"), Some("CA"));
    assert_eq!(region_of_text("+1 876 555 0123"), Some("JM"));
    assert_eq!(region_of_text("+1 787 555 0123"), Some("PR"));
    assert_eq!(region_of_text("+7 912 345 6789"), Some("RU"));
    assert_eq!(region_of_text("+7 701 234 5678"), Some("KZ"));
    assert_eq!(region_of_text("+49 30 901820"), Some("DE"));
    assert_eq!(region_of_text("+800 1234 5678"), None);
}

#[test]
fn other_characters_are_refused_and_scripts_read() {
    assert_eq!(
        parse("+1 312 555 0123 #45", None),
        Err(NumberError::Character)
    );
    assert_eq!(
        parse("+1 312 555 0123, 45", None),
        Err(NumberError::Character)
    );
    assert_eq!(parse("++1 312 555 0123", None), Err(NumberError::Character));
    assert_eq!(parse("1+312", Some(us())), Err(NumberError::Character));
    assert_eq!(
        e164("+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", None).as_deref(),
        Some("+971501234567")
    );
    assert_eq!(
        e164("＋４４７７００９００１２３", None).as_deref(),
        Some("+447700900123")
    );
    assert_eq!(parse("+1 2", None), Err(NumberError::Length));
}

#[test]
fn the_plan_is_sorted_for_binary_search() {
    assert!(plan::REGIONS.windows(2).all(|w| w[0].id < w[1].id));
    assert!(plan::CODES.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        plan::LEADING
            .windows(2)
            .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
    );
    // Every code has a root entry, so every number of a code gets the code's answer.
    assert!(plan::CODES.iter().all(|(c, _)| {
        plan::LEADING
            .iter()
            .any(|(lc, p, _)| lc == c && p.is_empty())
    }));
    assert!(plan::REGIONS.iter().all(|r| is_country_code(r.code)));
}

proptest::proptest! {
    /// Any text, in any region or none: an answer or an error, never a panic, and an accepted
    /// number is `+` and digits whose country code the plan knows.
    #[test]
    fn parse_never_panics(text in "(?s).{0,40}|[+0-9 ()./-]{0,30}", which in 0usize..300, with_region: bool) {
        let home = with_region.then(|| plan::REGIONS.get(which % plan::REGIONS.len())).flatten();
        if let Ok(p) = parse(&text, home) {
            let e = p.e164();
            proptest::prop_assert!(e.starts_with('+') && e[1..].bytes().all(|b| b.is_ascii_digit()), "{e:?}");
            let _ = p.region();
            let _ = p.has_possible_length();
        }
    }
}
