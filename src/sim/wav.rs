//! WAV in and out for the simulator: the phone's speech read from a file, what a phone heard
//! written to one, and files on a modem's flash decoded for playback. It owns the conversion
//! to and from 8 kHz mono s16 (the format of call audio on every profile) and nothing else; the
//! audio tty (`audio.rs`) and the flash (`files.rs`) both use it, so neither imports the other.
//!
//! Only PCM WAV is decoded (hound): a real module also plays AMR/MP3, the simulator refuses them
//! (docs/simulator.md, "Files on the modem and their playback"). Other sample rates are resampled
//! by nearest neighbour — good enough to hear and to measure, not to listen to for long.

use std::io::Cursor;
use std::path::Path;

/// Errors converting WAV data.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("reading WAV {path}: {source}")]
    Read { path: String, source: hound::Error },
    #[error("writing WAV {path}: {source}")]
    Write { path: String, source: hound::Error },
}

/// The format of call audio: 8 kHz, mono, signed 16-bit.
const CALL_AUDIO: hound::WavSpec = hound::WavSpec {
    channels: 1,
    sample_rate: 8000,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// Samples of a WAV file as 8 kHz mono s16: the first channel, resampled if the rate differs.
/// `None` if it is not a 16-bit PCM WAV.
pub fn decode(bytes: &[u8]) -> Option<Vec<i16>> {
    let reader = hound::WavReader::new(Cursor::new(bytes)).ok()?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int
        || spec.bits_per_sample != 16
        || spec.channels == 0
    {
        return None;
    }
    let ch = usize::from(spec.channels);
    let all: Vec<i16> = reader
        .into_samples::<i16>()
        .filter_map(Result::ok)
        .collect();
    let mono: Vec<i16> = all.iter().step_by(ch).copied().collect();
    if spec.sample_rate == 8000 || spec.sample_rate == 0 {
        return Some(mono);
    }
    let out_len = (mono.len() as u64 * 8000 / u64::from(spec.sample_rate)) as usize;
    Some(
        (0..out_len)
            .filter_map(|i| {
                mono.get((i as u64 * u64::from(spec.sample_rate) / 8000) as usize)
                    .copied()
            })
            .collect(),
    )
}

/// 8 kHz mono s16 samples as the bytes of a WAV file (what the daemon uploads to a modem).
pub fn encode(samples: &[i16]) -> Result<Vec<u8>, hound::Error> {
    let mut out = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, CALL_AUDIO)?;
    for s in samples {
        w.write_sample(*s)?;
    }
    w.finalize()?;
    Ok(out.into_inner())
}

/// Reads a WAV file into 8 kHz mono samples.
pub fn read(path: &Path) -> Result<Vec<i16>, WavError> {
    let bytes = std::fs::read(path).map_err(|e| WavError::Read {
        path: path.display().to_string(),
        source: hound::Error::IoError(e),
    })?;
    decode(&bytes).ok_or_else(|| WavError::Read {
        path: path.display().to_string(),
        source: hound::Error::Unsupported,
    })
}

/// Writes 8 kHz mono s16 samples as a WAV file.
pub fn write(path: &Path, samples: &[i16]) -> Result<(), WavError> {
    let err = |source| WavError::Write {
        path: path.display().to_string(),
        source,
    };
    let bytes = encode(samples).map_err(err)?;
    std::fs::write(path, bytes).map_err(|e| err(hound::Error::IoError(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let samples: Vec<i16> = (0..800).map(|i| (i * 37 % 2000) as i16 - 1000).collect();
        write(&p, &samples).unwrap();
        assert_eq!(read(&p).unwrap(), samples);
        assert_eq!(decode(&encode(&samples).unwrap()), Some(samples));
    }

    #[test]
    fn garbage_is_not_wav() {
        assert!(decode(b"not a wav at all").is_none());
        assert!(decode(&[]).is_none());
    }
}
