//! The bounds 3GPP TS 23.040 (and 24.011 for the SMSC prefix) puts on the fields of a PDU, checked
//! by `decode` as it reads each field. Each check returns the detail of the error (`Err(text)`
//! naming the value and the bound); `decode` adds the field name and the octet offset. Pure and
//! sans-I/O; it must not decide anything about what a message means.
//!
//! Why these and not more (docs/pdu.md, "Bounds the decoder enforces"): a field beyond its bound
//! makes the fields after it unreadable or their values meaningless — an address length of 0x81
//! swallows 65 octets of what follows and decodes the rest as nonsense. Values the spec tells a
//! receiver to accept are accepted: a reserved TP-DCS is not an error (23.038 §4 says a receiver
//! reads reserved codings as some alphabet; the codec shows their octets as data), nor is a
//! reserved TP-PID in an SMS-DELIVER (23.040 §9.2.3.9: "the MS will interpret reserved, obsolete,
//! or unsupported values as the value 00000000 but shall store them exactly as received"). The
//! same clause lets the SC reject an SMS-SUBMIT with a reserved TP-PID, which `decode` does.
//! A TP-UDL larger than the octets present but within the bound is still tolerated (what is there
//! is decoded).

/// Most semi-octets an address value may have: 10 octets (23.040 §9.1.2.5).
pub const MAX_ADDRESS_SEMI_OCTETS: u8 = 20;
/// Most octets of an SMSC prefix after its length octet: the type of address and 10 octets of
/// digits (27.005 §3.1 refers to the RP address of 24.011 §8.2.5.1/§8.2.5.2).
pub const MAX_SMSC_OCTETS: u8 = 11;
/// TP-UD holds at most 140 octets (23.040 §9.2.3.24), so TP-UDL is at most 140 octets or, in
/// GSM 7-bit, 160 septets (§9.2.3.16).
pub const MAX_UD_OCTETS: usize = 140;
/// See [`MAX_UD_OCTETS`].
pub const MAX_UD_SEPTETS: usize = 160;

/// TP-OA / TP-DA / TP-RA length: a count of useful semi-octets, at most 20.
pub fn address_length(semi_octets: u8) -> Result<(), String> {
    if semi_octets > MAX_ADDRESS_SEMI_OCTETS {
        return Err(format!(
            "address length {semi_octets} semi-octets (0x{semi_octets:02X}) exceeds the \
             {MAX_ADDRESS_SEMI_OCTETS} that 3GPP TS 23.040 §9.1.2.5 allows"
        ));
    }
    Ok(())
}

/// SMSC prefix length (octets, type of address included), at most 11.
pub fn smsc_length(octets: u8) -> Result<(), String> {
    if octets > MAX_SMSC_OCTETS {
        return Err(format!(
            "SMSC length {octets} octets exceeds {MAX_SMSC_OCTETS} (type of address and at most \
             20 digits, 3GPP TS 24.011 §8.2.5)"
        ));
    }
    Ok(())
}

/// TP-UDL against the capacity of TP-UD; `septets` when the alphabet is GSM 7-bit.
pub fn user_data_length(udl: usize, septets: bool) -> Result<(), String> {
    let (max, unit) = if septets {
        (MAX_UD_SEPTETS, "septets")
    } else {
        (MAX_UD_OCTETS, "octets")
    };
    if udl > max {
        return Err(format!(
            "TP-UDL {udl} exceeds the {max} {unit} TP-UD can hold (3GPP TS 23.040 §9.2.3.16)"
        ));
    }
    Ok(())
}

/// TP-UDHL: the header (its length octet included) must fit inside the user data TP-UDL counts;
/// in GSM 7-bit the header occupies whole septets, fill bits included (23.040 §9.2.3.24).
pub fn header_length(udhl: usize, udl: usize, septets: bool) -> Result<(), String> {
    let needed = if septets {
        ((udhl + 1) * 8).div_ceil(7)
    } else {
        udhl + 1
    };
    if needed > udl {
        let unit = if septets { "septets" } else { "octets" };
        return Err(format!(
            "TP-UDHL {udhl} needs {needed} {unit} but TP-UDL is {udl} (3GPP TS 23.040 §9.2.3.24)"
        ));
    }
    Ok(())
}

/// TP-PID of an SMS-SUBMIT: the reserved values of 23.040 §9.2.3.9, which the SC may reject.
pub fn submit_pid(pid: u8) -> Result<(), String> {
    let reserved = match pid >> 6 {
        // Telematic interworking (bit 5 set): device types 01110–01111 and 10011–10111.
        0b00 => pid & 0x20 != 0 && matches!(pid & 0x1F, 0x0E | 0x0F | 0x13..=0x17),
        // 0x48 is device triggering (Rel-11); 0x49–0x5D and 0x60–0x7B are reserved.
        0b01 => matches!(pid, 0x49..=0x5D | 0x60..=0x7B),
        0b10 => true,
        // 11xxxxxx: for SC-specific use.
        _ => false,
    };
    if reserved {
        return Err(format!(
            "TP-PID 0x{pid:02X} is reserved (3GPP TS 23.040 §9.2.3.9)"
        ));
    }
    Ok(())
}

/// The seven octets of a TP-SCTS / TP-DT / absolute TP-VP (23.040 §9.2.3.11): every semi-octet a
/// decimal digit (the time-zone sign bit aside), and a real date and time of day.
pub fn timestamp(octets: &[u8; 7]) -> Result<(), String> {
    const NAMES: [&str; 6] = ["year", "month", "day", "hour", "minute", "second"];
    let mut v = [0u8; 6];
    for (n, (&b, name)) in octets.iter().zip(NAMES).enumerate() {
        if b & 0x0F > 9 || b >> 4 > 9 {
            return Err(format!(
                "{name} octet 0x{b:02X} is not two decimal semi-octets (3GPP TS 23.040 §9.2.3.11)"
            ));
        }
        if let Some(slot) = v.get_mut(n) {
            *slot = (b & 0x0F) * 10 + (b >> 4);
        }
    }
    let tz = octets[6];
    if tz >> 4 > 9 {
        return Err(format!(
            "time zone octet 0x{tz:02X} is not two decimal semi-octets (3GPP TS 23.040 §9.2.3.11)"
        ));
    }
    let [yy, month, day, hour, minute, second] = v;
    let year = if yy >= 80 {
        1900 + u32::from(yy)
    } else {
        2000 + u32::from(yy)
    };
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return Err(format!("month {month} is outside 1–12")),
    };
    if day == 0 || day > month_days {
        return Err(format!(
            "day {day} is outside 1–{month_days} for {year}-{month:02}"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} is not a time of day"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_up_to_twenty_digits() {
        assert!(address_length(20).is_ok());
        let e = address_length(0x81).unwrap_err();
        assert!(e.contains("129") && e.contains("20"), "{e}");
        assert!(smsc_length(11).is_ok());
        assert!(smsc_length(12).is_err());
    }

    #[test]
    fn user_data_capacity() {
        assert!(user_data_length(160, true).is_ok());
        assert!(user_data_length(161, true).is_err());
        assert!(user_data_length(140, false).is_ok());
        assert!(user_data_length(141, false).is_err());
        // A 6-octet concatenation header (UDHL 5) takes 7 septets in GSM 7-bit.
        assert!(header_length(5, 7, true).is_ok());
        assert!(header_length(5, 6, true).is_err());
        assert!(header_length(5, 6, false).is_ok());
        assert!(header_length(5, 5, false).is_err());
    }

    #[test]
    fn reserved_pids() {
        for ok in [
            0x00, 0x21, 0x3F, 0x40, 0x47, 0x48, 0x5E, 0x5F, 0x7C, 0x7F, 0xC0, 0xFF,
        ] {
            assert!(submit_pid(ok).is_ok(), "0x{ok:02X}");
        }
        for bad in [0x2E, 0x2F, 0x33, 0x37, 0x49, 0x5D, 0x60, 0x7B, 0x80, 0xBF] {
            assert!(submit_pid(bad).is_err(), "0x{bad:02X}");
        }
    }

    #[test]
    fn timestamp_fields() {
        // 2015-11-27 00:00:00 +02:00 and 2007-04-12 23:25:42 -08:00 (docs/pdu.md).
        assert!(timestamp(&[0x51, 0x11, 0x72, 0x00, 0x00, 0x00, 0x80]).is_ok());
        assert!(timestamp(&[0x70, 0x40, 0x21, 0x32, 0x52, 0x24, 0x2B]).is_ok());
        // 2024-02-29 exists, 2023-02-29 does not.
        assert!(timestamp(&[0x42, 0x20, 0x92, 0, 0, 0, 0]).is_ok());
        assert!(
            timestamp(&[0x32, 0x20, 0x92, 0, 0, 0, 0])
                .unwrap_err()
                .contains("day 29")
        );
        assert!(
            timestamp(&[0x42, 0x31, 0x10, 0, 0, 0, 0])
                .unwrap_err()
                .contains("month 13")
        );
        assert!(
            timestamp(&[0x42, 0x10, 0x00, 0, 0, 0, 0])
                .unwrap_err()
                .contains("day 0")
        );
        assert!(
            timestamp(&[0x42, 0x10, 0x10, 0x42, 0, 0, 0]).is_err(),
            "hour 24"
        );
        assert!(
            timestamp(&[0x42, 0x10, 0x10, 0, 0x06, 0, 0]).is_err(),
            "minute 60"
        );
        assert!(
            timestamp(&[0x42, 0x10, 0x10, 0, 0, 0x06, 0]).is_err(),
            "second 60"
        );
        assert!(
            timestamp(&[0x4A, 0x10, 0x10, 0, 0, 0, 0])
                .unwrap_err()
                .contains("year")
        );
        assert!(
            timestamp(&[0x42, 0x10, 0x10, 0, 0, 0, 0xA0])
                .unwrap_err()
                .contains("time zone")
        );
    }
}
