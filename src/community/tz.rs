//! A member's time zone from their number (and city), so quiet hours hold in the recipient's
//! local time (docs/dispatch.md, "Quiet hours").
//!
//! Order of evidence: an explicit zone (CSV `timezone`, an onboarding answer) beats everything
//! and is not decided here; then, for US/Canadian numbers, a known city (people keep their
//! numbers when they move, so a stated city is better evidence than the area code); then the
//! area code; for other countries the country's zone. `None` means "use the configured
//! `dispatch.default_time_zone`", decided at send time so a changed default applies to everyone.
//!
//! Coverage, kept deliberately compact:
//! - [`COUNTRY_ZONES`]: countries with one zone, or one zone holding nearly all of the population
//!   (Spain, Portugal, Chile, New Zealand, Argentina, Ecuador: the mainland zone). Multi-zone
//!   countries are absent (Mexico, Brazil, Russia, Australia, Indonesia, Kazakhstan, DR Congo):
//!   they fall back to the default.
//! - [`NANP_AREA_CODES`]: the area codes of the 50 US states, DC and the Canadian provinces as
//!   assigned in 2024, by the zone of most of the area; split areas take the zone of their largest
//!   city (Florida 850 → Eastern, Texas 915 → Mountain, Tennessee 423/865 → Eastern, Kentucky
//!   270/364 → Central, Indiana 219 → Central, Nebraska 308 → Central, Oregon 541 → Pacific,
//!   Idaho → Boise). Canadian territories (867) are absent. NANP islands (PR, JM, …) are
//!   their own regions in the numbering plan (`crate::numbering`) and are in the country table.
//! - [`US_CA_CITIES`]: the larger US/Canadian cities, matched case-insensitively.

use super::member::E164;

/// ISO 3166 region → IANA zone, for regions with one (predominant) zone.
pub const COUNTRY_ZONES: &[(&str, &str)] = &[
    ("AD", "Europe/Andorra"),
    ("AE", "Asia/Dubai"),
    ("AF", "Asia/Kabul"),
    ("AG", "America/Antigua"),
    ("AL", "Europe/Tirane"),
    ("AM", "Asia/Yerevan"),
    ("AO", "Africa/Luanda"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("AZ", "Asia/Baku"),
    ("BA", "Europe/Sarajevo"),
    ("BB", "America/Barbados"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BG", "Europe/Sofia"),
    ("BH", "Asia/Bahrain"),
    ("BO", "America/La_Paz"),
    ("BS", "America/Nassau"),
    ("BY", "Europe/Minsk"),
    ("BZ", "America/Belize"),
    ("CH", "Europe/Zurich"),
    ("CI", "Africa/Abidjan"),
    ("CL", "America/Santiago"),
    ("CM", "Africa/Douala"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CR", "America/Costa_Rica"),
    ("CU", "America/Havana"),
    ("CY", "Asia/Nicosia"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("DO", "America/Santo_Domingo"),
    ("DZ", "Africa/Algiers"),
    ("EC", "America/Guayaquil"),
    ("EE", "Europe/Tallinn"),
    ("EG", "Africa/Cairo"),
    ("ES", "Europe/Madrid"),
    ("ET", "Africa/Addis_Ababa"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GE", "Asia/Tbilisi"),
    ("GG", "Europe/Guernsey"),
    ("GH", "Africa/Accra"),
    ("GR", "Europe/Athens"),
    ("GT", "America/Guatemala"),
    ("GU", "Pacific/Guam"),
    ("HK", "Asia/Hong_Kong"),
    ("HN", "America/Tegucigalpa"),
    ("HR", "Europe/Zagreb"),
    ("HT", "America/Port-au-Prince"),
    ("HU", "Europe/Budapest"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IM", "Europe/Isle_of_Man"),
    ("IN", "Asia/Kolkata"),
    ("IQ", "Asia/Baghdad"),
    ("IR", "Asia/Tehran"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("JE", "Europe/Jersey"),
    ("JM", "America/Jamaica"),
    ("JO", "Asia/Amman"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KH", "Asia/Phnom_Penh"),
    ("KR", "Asia/Seoul"),
    ("KW", "Asia/Kuwait"),
    ("LB", "Asia/Beirut"),
    ("LI", "Europe/Vaduz"),
    ("LK", "Asia/Colombo"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("MA", "Africa/Casablanca"),
    ("MC", "Europe/Monaco"),
    ("MD", "Europe/Chisinau"),
    ("ME", "Europe/Podgorica"),
    ("MK", "Europe/Skopje"),
    ("MM", "Asia/Yangon"),
    ("MT", "Europe/Malta"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("NG", "Africa/Lagos"),
    ("NI", "America/Managua"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NP", "Asia/Kathmandu"),
    ("NZ", "Pacific/Auckland"),
    ("OM", "Asia/Muscat"),
    ("PA", "America/Panama"),
    ("PE", "America/Lima"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PR", "America/Puerto_Rico"),
    ("PT", "Europe/Lisbon"),
    ("PY", "America/Asuncion"),
    ("QA", "Asia/Qatar"),
    ("RO", "Europe/Bucharest"),
    ("RS", "Europe/Belgrade"),
    ("RW", "Africa/Kigali"),
    ("SA", "Asia/Riyadh"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("SI", "Europe/Ljubljana"),
    ("SK", "Europe/Bratislava"),
    ("SN", "Africa/Dakar"),
    ("SV", "America/El_Salvador"),
    ("TH", "Asia/Bangkok"),
    ("TN", "Africa/Tunis"),
    ("TR", "Europe/Istanbul"),
    ("TT", "America/Port_of_Spain"),
    ("TW", "Asia/Taipei"),
    ("TZ", "Africa/Dar_es_Salaam"),
    ("UA", "Europe/Kyiv"),
    ("UG", "Africa/Kampala"),
    ("UY", "America/Montevideo"),
    ("VE", "America/Caracas"),
    ("VI", "America/St_Thomas"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("ZA", "Africa/Johannesburg"),
    ("ZM", "Africa/Lusaka"),
    ("ZW", "Africa/Harare"),
];

/// NANP area codes by zone (see the module doc for coverage and split areas).
pub const NANP_AREA_CODES: &[(&str, &[u16])] = &[
    (
        "America/New_York",
        &[
            // New York, New Jersey, Pennsylvania
            212, 315, 332, 347, 516, 518, 585, 607, 631, 646, 680, 716, 718, 838, 845, 914, 917,
            929, 934, 201, 551, 609, 640, 732, 848, 856, 862, 908, 973, 215, 223, 267, 272, 412,
            445, 484, 570, 582, 610, 717, 724, 814, 835, 878, // New England
            339, 351, 413, 508, 617, 774, 781, 857, 978, 203, 475, 860, 959, 401, 603, 802, 207,
            // DC, Maryland, Delaware, Virginia, West Virginia
            202, 771, 240, 301, 410, 443, 667, 302, 276, 434, 540, 571, 703, 757, 804, 826, 948,
            304, 681, // Carolinas, Georgia, Florida
            252, 336, 704, 743, 828, 910, 919, 980, 984, 803, 839, 843, 854, 864, 229, 404, 470,
            478, 678, 706, 762, 770, 912, 943, 239, 305, 321, 352, 386, 407, 448, 561, 656, 689,
            727, 754, 772, 786, 813, 850, 863, 904, 941, 954,
            // Ohio, eastern Kentucky and Tennessee
            216, 220, 234, 283, 326, 330, 380, 419, 436, 440, 513, 567, 614, 740, 937, 502, 606,
            859, 423, 865,
        ],
    ),
    (
        "America/Detroit",
        &[
            231, 248, 269, 313, 517, 586, 616, 679, 734, 810, 906, 947, 989,
        ],
    ),
    (
        "America/Indiana/Indianapolis",
        &[260, 317, 463, 574, 765, 812, 930],
    ),
    (
        "America/Chicago",
        &[
            // Illinois, Wisconsin, Minnesota, Iowa, Missouri
            217, 224, 309, 312, 331, 447, 464, 618, 630, 708, 773, 779, 815, 847, 872, 262, 274,
            414, 534, 608, 715, 920, 218, 320, 507, 612, 651, 763, 952, 319, 515, 563, 641, 712,
            314, 417, 557, 573, 636, 660, 816, 975,
            // Texas (but El Paso), Oklahoma, Arkansas, Louisiana, Kansas, Nebraska, Dakotas
            210, 214, 254, 281, 325, 346, 361, 409, 430, 432, 469, 512, 682, 713, 726, 737, 806,
            817, 830, 832, 903, 936, 940, 945, 956, 972, 979, 405, 539, 572, 580, 918, 327, 479,
            501, 870, 225, 318, 337, 504, 985, 316, 620, 785, 913, 308, 402, 531, 701, 605,
            // Alabama, Mississippi, middle/west Tennessee, western Kentucky, NW Indiana
            205, 251, 256, 334, 659, 938, 228, 601, 662, 769, 615, 629, 731, 901, 931, 270, 364,
            219,
        ],
    ),
    (
        "America/Denver",
        &[
            303, 719, 720, 970, 983, 385, 435, 801, 505, 575, 406, 307, 915,
        ],
    ),
    ("America/Boise", &[208, 986]),
    ("America/Phoenix", &[480, 520, 602, 623, 928]),
    (
        "America/Los_Angeles",
        &[
            209, 213, 279, 310, 323, 341, 350, 369, 408, 415, 424, 442, 510, 530, 559, 562, 619,
            626, 628, 650, 657, 661, 669, 707, 714, 747, 760, 805, 818, 820, 831, 840, 858, 909,
            916, 925, 949, 951, 206, 253, 360, 425, 509, 564, 458, 503, 541, 971, 702, 725, 775,
        ],
    ),
    ("America/Anchorage", &[907]),
    ("Pacific/Honolulu", &[808]),
    (
        "America/Toronto",
        &[
            // Ontario (but 807), Quebec
            226, 249, 289, 343, 365, 382, 416, 437, 519, 548, 613, 647, 683, 705, 742, 753, 905,
            263, 354, 367, 418, 438, 450, 468, 514, 579, 581, 819, 873,
        ],
    ),
    ("America/Winnipeg", &[204, 431, 584, 807]),
    ("America/Regina", &[306, 474, 639]),
    ("America/Edmonton", &[368, 403, 587, 780, 825]),
    ("America/Vancouver", &[236, 250, 257, 604, 672, 778]),
    ("America/Halifax", &[782, 902]),
    ("America/Moncton", &[428, 506]),
    ("America/St_Johns", &[709, 879]),
];

/// Larger US and Canadian cities → zone.
pub const US_CA_CITIES: &[(&str, &str)] = &[
    ("new york", "America/New_York"),
    ("brooklyn", "America/New_York"),
    ("philadelphia", "America/New_York"),
    ("boston", "America/New_York"),
    ("washington", "America/New_York"),
    ("baltimore", "America/New_York"),
    ("atlanta", "America/New_York"),
    ("miami", "America/New_York"),
    ("orlando", "America/New_York"),
    ("tampa", "America/New_York"),
    ("jacksonville", "America/New_York"),
    ("charlotte", "America/New_York"),
    ("raleigh", "America/New_York"),
    ("pittsburgh", "America/New_York"),
    ("cleveland", "America/New_York"),
    ("columbus", "America/New_York"),
    ("cincinnati", "America/New_York"),
    ("detroit", "America/Detroit"),
    ("indianapolis", "America/Indiana/Indianapolis"),
    ("louisville", "America/Kentucky/Louisville"),
    ("nashville", "America/Chicago"),
    ("memphis", "America/Chicago"),
    ("chicago", "America/Chicago"),
    ("milwaukee", "America/Chicago"),
    ("minneapolis", "America/Chicago"),
    ("st. louis", "America/Chicago"),
    ("saint louis", "America/Chicago"),
    ("kansas city", "America/Chicago"),
    ("houston", "America/Chicago"),
    ("dallas", "America/Chicago"),
    ("austin", "America/Chicago"),
    ("san antonio", "America/Chicago"),
    ("fort worth", "America/Chicago"),
    ("new orleans", "America/Chicago"),
    ("oklahoma city", "America/Chicago"),
    ("omaha", "America/Chicago"),
    ("denver", "America/Denver"),
    ("salt lake city", "America/Denver"),
    ("albuquerque", "America/Denver"),
    ("el paso", "America/Denver"),
    ("boise", "America/Boise"),
    ("phoenix", "America/Phoenix"),
    ("tucson", "America/Phoenix"),
    ("las vegas", "America/Los_Angeles"),
    ("los angeles", "America/Los_Angeles"),
    ("san diego", "America/Los_Angeles"),
    ("san jose", "America/Los_Angeles"),
    ("san francisco", "America/Los_Angeles"),
    ("oakland", "America/Los_Angeles"),
    ("sacramento", "America/Los_Angeles"),
    ("fresno", "America/Los_Angeles"),
    ("seattle", "America/Los_Angeles"),
    ("portland", "America/Los_Angeles"),
    ("anchorage", "America/Anchorage"),
    ("honolulu", "Pacific/Honolulu"),
    ("toronto", "America/Toronto"),
    ("ottawa", "America/Toronto"),
    ("montreal", "America/Toronto"),
    ("montréal", "America/Toronto"),
    ("quebec", "America/Toronto"),
    ("winnipeg", "America/Winnipeg"),
    ("regina", "America/Regina"),
    ("saskatoon", "America/Regina"),
    ("calgary", "America/Edmonton"),
    ("edmonton", "America/Edmonton"),
    ("vancouver", "America/Vancouver"),
    ("victoria", "America/Vancouver"),
    ("halifax", "America/Halifax"),
    ("st. john's", "America/St_Johns"),
];

/// The zone of a US/Canadian city, if it is in [`US_CA_CITIES`].
pub fn zone_for_city(city: &str) -> Option<&'static str> {
    let key = city
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    US_CA_CITIES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, zone)| *zone)
}

/// The zone of a NANP area code, if it is in [`NANP_AREA_CODES`].
pub fn zone_for_area_code(area: u16) -> Option<&'static str> {
    NANP_AREA_CODES
        .iter()
        .find(|(_, codes)| codes.contains(&area))
        .map(|(zone, _)| *zone)
}

/// The zone of a region with one (predominant) zone.
pub fn zone_for_region(region: &str) -> Option<&'static str> {
    COUNTRY_ZONES
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(region))
        .map(|(_, zone)| *zone)
}

/// The member's zone from their number and, for US/CA numbers, their city; `None` = use the
/// configured default (see the module doc for the order of evidence).
pub fn zone_for_number(number: &E164, city: Option<&str>) -> Option<&'static str> {
    let region = number.region.as_deref()?;
    let nanp_mainland = region == "US" || region == "CA";
    if nanp_mainland {
        if let Some(zone) = city.and_then(zone_for_city) {
            return Some(zone);
        }
        // The national significant number is ten digits: NPA NXX XXXX.
        let area = u16::try_from(number.national / 10_000_000).ok()?;
        return zone_for_area_code(area);
    }
    zone_for_region(region)
}

/// Whether `name` is a zone in the system's tz database (a machine without one accepts any
/// syntactically plausible name, as config validation does).
pub fn is_known_zone(name: &str) -> bool {
    let plausible = !name.is_empty()
        && name.len() <= 64
        && name.split('/').all(|p| {
            !p.is_empty()
                && p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+-".contains(&b))
        });
    if !plausible {
        return false;
    }
    let db = jiff::tz::db();
    db.is_definitively_empty() || db.get(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::community::member::normalise_number;

    fn zone(number: &str, city: Option<&str>) -> Option<&'static str> {
        let n = normalise_number(number, None).unwrap_or_else(|e| panic!("{e}"));
        zone_for_number(&n, city)
    }

    #[test]
    fn every_table_zone_is_in_the_tz_database() {
        if jiff::tz::db().is_definitively_empty() {
            return; // nothing to check against on a machine without tzdata
        }
        let zones = COUNTRY_ZONES
            .iter()
            .map(|(_, z)| *z)
            .chain(NANP_AREA_CODES.iter().map(|(z, _)| *z))
            .chain(US_CA_CITIES.iter().map(|(_, z)| *z));
        for z in zones {
            assert!(jiff::tz::db().get(z).is_ok(), "{z} not in tz database");
        }
    }

    #[test]
    fn area_codes_are_listed_once() {
        let mut all: Vec<u16> = NANP_AREA_CODES
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "an area code is in two zones");
        assert!(n > 300, "table shrank: {n}");
    }

    #[test]
    fn zones_from_numbers() {
        assert_eq!(zone("+13125550123", None), Some("America/Chicago"));
        assert_eq!(zone("+12125550123", None), Some("America/New_York"));
        assert_eq!(zone("+14155550123", None), Some("America/Los_Angeles"));
        assert_eq!(zone("+16025550123", None), Some("America/Phoenix"));
        assert_eq!(zone("+14165550123", None), Some("America/Toronto"));
        // A stated city beats the area code (numbers move with people).
        assert_eq!(
            zone("+13125550123", Some(" Denver ")),
            Some("America/Denver")
        );
        assert_eq!(zone("+4930901820", None), Some("Europe/Berlin"));
        assert_eq!(zone("+447400123456", None), Some("Europe/London"));
        // Multi-zone countries fall back to the default.
        assert_eq!(zone("+61412345678", None), None);
    }

    #[test]
    fn zone_names_are_checked() {
        assert!(is_known_zone("Europe/Berlin"));
        assert!(!is_known_zone("../etc/passwd"));
        assert!(!is_known_zone(""));
    }
}
