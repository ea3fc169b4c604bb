//! The greeting that ships with gsmgate: the story's words ("Send me a text and I'll send you
//! messages from time to time"), spoken by a speech synthesiser, 3.7 s, 8 kHz mono 16-bit — the
//! modem format, so the caller hears the file's samples bit for bit.
//!
//! It exists so the embedded default (a simulated pool) can answer a call and play something
//! without the user recording anything first (`[voice] builtin_greeting = true`). A greeting file
//! (`[voice] greeting`) or one installed with `gsmgate greeting set` always wins over it.
//!
//! How the file was made (reproducible bit for bit with these versions; docs/voice.md, "The
//! built-in greeting", says the same): Debian 12's espeak-ng 1.51 and SoX 14.4.2,
//!
//! ```text
//! espeak-ng -v en-us -s 160 -w src.wav "Send me a text and I'll send you messages from time to time."
//! sox -D src.wav -r 8000 -c 1 -b 16 -e signed-integer src/voice/demo_greeting.wav \
//!     silence 1 0.05 0.5% reverse silence 1 0.05 0.5% reverse
//! ```
//!
//! (`-D`: no dither, so two runs give the same bytes; the `silence … reverse` pair trims the
//! synthesiser's leading and trailing silence.) It is compiled into the binary with
//! `include_bytes!`, so an installed gateway needs no extra file.

use super::greeting::{Greeting, GreetingError};

/// The WAV file as shipped (src/voice/demo_greeting.wav).
pub const BUILTIN_GREETING_WAV: &[u8] = include_bytes!("demo_greeting.wav");

/// The built-in greeting, loaded like any greeting file.
pub fn builtin_greeting() -> Result<Greeting, GreetingError> {
    Greeting::from_wav(BUILTIN_GREETING_WAV)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_greeting_is_a_short_native_wav() {
        assert!(BUILTIN_GREETING_WAV.len() < 100 * 1024);
        let g = builtin_greeting().unwrap();
        assert!(g.source().is_native(), "8 kHz mono 16-bit, played as is");
        assert!(
            (2_000..6_000).contains(&g.duration_ms()),
            "a few seconds: {} ms",
            g.duration_ms()
        );
    }
}
