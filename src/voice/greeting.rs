//! The greeting: a WAV file loaded, validated and converted once to the modem format (s16le, 8 kHz,
//! mono; docs/voice.md, "How the audio flows (PCM)"), then cut into 20 ms frames for the audio tty.
//!
//! It owns WAV decoding and the conversion; it must not touch ports or the store. The rule, also in
//! docs/voice.md: a PCM WAV that is already 8 kHz mono 16-bit is used bit for bit. Anything else
//! that hound can read as PCM (8/16/24/32-bit integer or 32-bit float, 1–8 channels, 1–192 kHz) is
//! converted at load: channels are averaged, then, above 8 kHz, a 63-tap windowed-sinc low-pass
//! (Hamming window, cut-off 3.6 kHz) removes what 8 kHz cannot carry, and samples are taken at the
//! 8 kHz instants by linear interpolation; below 8 kHz only the interpolation runs. The result is
//! rounded and clamped to 16 bits. This is deliberately simple and deterministic (no new crate;
//! rubato is not a dependency): the same file always converts to the same samples, so tests can
//! compare what the caller heard bit for bit with [`convert`]'s output. Empty, non-PCM, oversized
//! (over [`MAX_SECONDS`] or [`MAX_BYTES`]) and unreadable files are refused with an error naming the
//! expected format.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

/// The modem's sample rate (Huawei `^CVOICE: 0,8000,16,20`; SIMCom and Quectel PCM default to it).
pub const RATE: u32 = 8000;
/// Bytes per 20 ms frame of s16le 8 kHz mono.
pub const FRAME_BYTES: usize = 320;
/// Samples per frame.
pub const FRAME_SAMPLES: usize = FRAME_BYTES / 2;
/// Longest greeting accepted.
pub const MAX_SECONDS: u32 = 300;
/// Largest WAV file accepted.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

const TAPS: usize = 63;
const CUTOFF_HZ: f64 = 3600.0;
const EXPECTED: &str = "a PCM WAV file (ideally 8 kHz, mono, 16-bit; other PCM rates and channel \
                        counts are converted)";

/// Why a greeting was refused.
#[derive(Debug, thiserror::Error)]
pub enum GreetingError {
    #[error("reading greeting {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("greeting is not {EXPECTED}: {detail}")]
    Format { detail: String },
    #[error("greeting is empty (no samples)")]
    Empty,
    #[error("greeting is too long: {seconds:.1} s (at most {MAX_SECONDS} s)")]
    TooLong { seconds: f64 },
    #[error("greeting file is too large: {bytes} bytes (at most {MAX_BYTES})")]
    TooLarge { bytes: usize },
}

/// What the loaded file was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SourceFormat {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    pub float: bool,
}

impl SourceFormat {
    /// Whether the file was already in the modem format (used bit for bit).
    pub fn is_native(&self) -> bool {
        self.sample_rate == RATE && self.channels == 1 && self.bits == 16 && !self.float
    }
}

/// A greeting in the modem format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    samples: Arc<[i16]>,
    source: SourceFormat,
}

impl Greeting {
    /// Loads a WAV file.
    pub fn load_file(path: &Path) -> Result<Greeting, GreetingError> {
        let bytes = std::fs::read(path).map_err(|source| GreetingError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Greeting::from_wav(&bytes)
    }

    /// Loads WAV bytes, converting them to 8 kHz mono 16-bit if needed (module docs).
    pub fn from_wav(bytes: &[u8]) -> Result<Greeting, GreetingError> {
        if bytes.len() > MAX_BYTES {
            return Err(GreetingError::TooLarge { bytes: bytes.len() });
        }
        let (samples, source) = convert(bytes)?;
        if samples.is_empty() {
            return Err(GreetingError::Empty);
        }
        Ok(Greeting {
            samples: samples.into(),
            source,
        })
    }

    /// The samples (8 kHz mono).
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// What the file was before conversion.
    pub fn source(&self) -> SourceFormat {
        self.source
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(RATE)
    }

    /// The greeting as 320-byte frames; the last one is padded with silence.
    pub fn frames(&self) -> Vec<[u8; FRAME_BYTES]> {
        samples_to_frames(&self.samples)
    }

    /// The converted greeting as an 8 kHz mono 16-bit WAV file (what is stored and uploaded).
    pub fn to_wav(&self) -> Vec<u8> {
        wav_bytes(&self.samples)
    }
}

/// Cuts samples into 320-byte frames, padding the last with silence.
pub fn samples_to_frames(samples: &[i16]) -> Vec<[u8; FRAME_BYTES]> {
    samples
        .chunks(FRAME_SAMPLES)
        .map(|chunk| {
            let mut f = [0u8; FRAME_BYTES];
            for (dst, s) in f.chunks_exact_mut(2).zip(chunk) {
                dst.copy_from_slice(&s.to_le_bytes());
            }
            f
        })
        .collect()
}

/// 8 kHz mono 16-bit WAV bytes of `samples`.
pub fn wav_bytes(samples: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    // Writing to a Vec cannot fail for I/O reasons; hound only errors on a spec it cannot write,
    // and this spec is the plainest one. An error would leave an empty buffer, never a panic.
    if let Ok(mut w) = hound::WavWriter::new(&mut out, spec) {
        for s in samples {
            if w.write_sample(*s).is_err() {
                break;
            }
        }
        let _ = w.finalize();
    }
    out.into_inner()
}

/// Decodes WAV bytes and converts them to 8 kHz mono 16-bit (module docs for the filter).
pub fn convert(bytes: &[u8]) -> Result<(Vec<i16>, SourceFormat), GreetingError> {
    let fmt = |detail: String| GreetingError::Format { detail };
    let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| fmt(e.to_string()))?;
    let spec = reader.spec();
    let source = SourceFormat {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits: spec.bits_per_sample,
        float: spec.sample_format == hound::SampleFormat::Float,
    };
    if !(1..=8).contains(&spec.channels) {
        return Err(fmt(format!("{} channels", spec.channels)));
    }
    if !(1000..=192_000).contains(&spec.sample_rate) {
        return Err(fmt(format!("sample rate {} Hz", spec.sample_rate)));
    }
    let frames = u64::from(reader.duration());
    let seconds = frames as f64 / f64::from(spec.sample_rate);
    if seconds > f64::from(MAX_SECONDS) {
        return Err(GreetingError::TooLong { seconds });
    }
    if source.is_native() {
        let samples = reader
            .into_samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fmt(e.to_string()))?;
        return Ok((samples, source));
    }
    let ch = usize::from(spec.channels);
    let interleaved: Vec<f64> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(fmt(format!("{}-bit float", spec.bits_per_sample)));
            }
            reader
                .into_samples::<f32>()
                .map(|s| s.map(|v| f64::from(v) * 32768.0))
                .collect::<Result<_, _>>()
                .map_err(|e| fmt(e.to_string()))?
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(8..=32).contains(&bits) {
                return Err(fmt(format!("{bits}-bit integer")));
            }
            // Scale every width to the 16-bit range.
            let scale = 2f64.powi(16 - i32::from(bits));
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| f64::from(v) * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| fmt(e.to_string()))?
        }
    };
    let mono: Vec<f64> = interleaved
        .chunks(ch)
        .filter(|c| c.len() == ch)
        .map(|c| c.iter().sum::<f64>() / ch as f64)
        .collect();
    let out = resample(&mono, spec.sample_rate);
    Ok((out.into_iter().map(quantize).collect(), source))
}

fn quantize(v: f64) -> i16 {
    v.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

/// Low-pass taps (windowed sinc, Hamming) for a source rate, normalised to unity gain at DC.
/// `libm`'s sine and cosine, not `f64::sin`: the daemon's only calls into the C maths library
/// were this, the beep and one `pow`, and linking that library costs ~0.5 MB of resident memory
/// at every start (docs/daemon.md, "Footprint").
fn lowpass(rate: u32) -> Vec<f64> {
    let fc = CUTOFF_HZ / f64::from(rate);
    let m = (TAPS - 1) as f64;
    let mut taps: Vec<f64> = (0..TAPS)
        .map(|i| {
            let x = i as f64 - m / 2.0;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                libm::sin(2.0 * std::f64::consts::PI * fc * x) / (std::f64::consts::PI * x)
            };
            let w = 0.54 - 0.46 * libm::cos(2.0 * std::f64::consts::PI * i as f64 / m);
            sinc * w
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    if sum != 0.0 {
        for t in &mut taps {
            *t /= sum;
        }
    }
    taps
}

/// Resamples mono samples at `rate` to 8 kHz (module docs). Only the source samples next to each
/// output instant are filtered, so the cost is per output sample, not per input sample.
fn resample(mono: &[f64], rate: u32) -> Vec<f64> {
    if rate == RATE {
        return mono.to_vec();
    }
    let taps = (rate > RATE).then(|| lowpass(rate));
    let half = (TAPS / 2) as i64;
    let at = |i: i64| -> f64 {
        match &taps {
            None => usize::try_from(i)
                .ok()
                .and_then(|i| mono.get(i))
                .copied()
                .unwrap_or(0.0),
            Some(taps) => taps
                .iter()
                .enumerate()
                .map(|(k, t)| {
                    let j = i + k as i64 - half;
                    let v = usize::try_from(j)
                        .ok()
                        .and_then(|j| mono.get(j))
                        .copied()
                        .unwrap_or(0.0);
                    v * t
                })
                .sum(),
        }
    };
    let out_len = (mono.len() as u64 * u64::from(RATE) / u64::from(rate)) as usize;
    (0..out_len)
        .map(|n| {
            let pos = n as f64 * f64::from(rate) / f64::from(RATE);
            let i = pos.floor() as i64;
            let frac = pos - i as f64;
            let a = at(i);
            if frac == 0.0 {
                a
            } else {
                a + (at(i + 1) - a) * frac
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wav(spec: hound::WavSpec, samples: &[i32]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        for s in samples {
            match spec.sample_format {
                hound::SampleFormat::Int if spec.bits_per_sample == 16 => {
                    w.write_sample(*s as i16).unwrap()
                }
                hound::SampleFormat::Int if spec.bits_per_sample == 8 => {
                    w.write_sample(*s as i8).unwrap()
                }
                hound::SampleFormat::Int => w.write_sample(*s).unwrap(),
                hound::SampleFormat::Float => w.write_sample(*s as f32 / 32768.0).unwrap(),
            }
        }
        w.finalize().unwrap();
        out.into_inner()
    }

    fn spec(rate: u32, channels: u16, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn native_format_is_bit_exact() {
        let s: Vec<i32> = (0..1000).map(|i| (i * 97 % 60000) - 30000).collect();
        let g = Greeting::from_wav(&wav(spec(8000, 1, 16), &s)).unwrap();
        assert!(g.source().is_native());
        let want: Vec<i16> = s.iter().map(|v| *v as i16).collect();
        assert_eq!(g.samples(), &want[..]);
        assert_eq!(g.duration_ms(), 125);
        // 1000 samples = 6.25 frames → 7 frames, the last padded.
        let f = g.frames();
        assert_eq!(f.len(), 7);
        assert!(f[6][80..].iter().all(|b| *b == 0));
        assert_eq!(Greeting::from_wav(&g.to_wav()).unwrap(), g);
    }

    #[test]
    fn stereo_is_averaged() {
        let s = [100, 300, -100, -300, 7, 8];
        let g = Greeting::from_wav(&wav(spec(8000, 2, 16), &s)).unwrap();
        // 7.5 rounds away from zero.
        assert_eq!(g.samples(), &[200, -200, 8]);
    }

    #[test]
    fn widths_are_scaled() {
        let g = Greeting::from_wav(&wav(spec(8000, 1, 8), &[64, -128])).unwrap();
        assert_eq!(g.samples(), &[16384, -32768]);
        let g = Greeting::from_wav(&wav(spec(8000, 1, 24), &[1 << 20, -(1 << 23)])).unwrap();
        assert_eq!(g.samples(), &[4096, -32768]);
        let fspec = hound::WavSpec {
            sample_format: hound::SampleFormat::Float,
            ..spec(8000, 1, 32)
        };
        let g = Greeting::from_wav(&wav(fspec, &[16384, -32768])).unwrap();
        assert_eq!(g.samples(), &[16384, -32768]);
    }

    #[test]
    fn resampling_keeps_length_dc_and_kills_high_tones() {
        // 1 s at 48 kHz: a DC level, then a 10 kHz tone that 8 kHz cannot carry.
        let dc: Vec<i32> = vec![1000; 48_000];
        let g = Greeting::from_wav(&wav(spec(48_000, 1, 16), &dc)).unwrap();
        assert_eq!(g.samples().len(), 8000);
        // Away from the edges (filter warm-up), DC passes unchanged.
        assert!(
            g.samples()[100..7900]
                .iter()
                .all(|s| (*s - 1000).abs() <= 1)
        );
        let tone: Vec<i32> = (0..48_000)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * 10_000.0 * i as f64 / 48_000.0).sin())
                    as i32
            })
            .collect();
        let g = Greeting::from_wav(&wav(spec(48_000, 1, 16), &tone)).unwrap();
        let peak = g.samples()[100..7900]
            .iter()
            .map(|s| s.unsigned_abs())
            .max();
        assert!(peak < Some(500), "10 kHz leaked: peak {peak:?}");
        // A 400 Hz tone passes with its amplitude.
        let tone: Vec<i32> = (0..44_100)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * 400.0 * i as f64 / 44_100.0).sin()) as i32
            })
            .collect();
        let g = Greeting::from_wav(&wav(spec(44_100, 1, 16), &tone)).unwrap();
        let peak = g.samples()[100..7900]
            .iter()
            .map(|s| s.unsigned_abs())
            .max();
        assert!(
            peak.is_some_and(|p| (9_500..=10_100).contains(&p)),
            "{peak:?}"
        );
        // Upsampling from 4 kHz interpolates linearly.
        let g = Greeting::from_wav(&wav(spec(4000, 1, 16), &[0, 100, 200])).unwrap();
        assert_eq!(g.samples(), &[0, 50, 100, 150, 200, 100]);
    }

    #[test]
    fn refusals_name_the_format() {
        let e = Greeting::from_wav(b"RIFF nonsense").unwrap_err();
        assert!(e.to_string().contains("8 kHz, mono, 16-bit"), "{e}");
        assert!(matches!(
            Greeting::from_wav(&wav(spec(8000, 1, 16), &[])),
            Err(GreetingError::Empty)
        ));
        let long = vec![0; 8000 * (MAX_SECONDS as usize + 1)];
        assert!(matches!(
            Greeting::from_wav(&wav(spec(8000, 1, 16), &long)),
            Err(GreetingError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Greeting::from_wav(&bytes);
        }

        #[test]
        fn never_panics_on_a_valid_header_with_garbage(tail in proptest::collection::vec(any::<u8>(), 0..400), rate in 1u32..200_000, ch in 0u16..10) {
            let mut w = wav(spec(8000, 1, 16), &[1, 2, 3]);
            w.truncate(44);
            // Patch channels and rate in the fmt chunk.
            w[22..24].copy_from_slice(&ch.to_le_bytes());
            w[24..28].copy_from_slice(&rate.to_le_bytes());
            w.extend(tail);
            let _ = Greeting::from_wav(&w);
        }
    }
}
