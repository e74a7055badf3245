//! `ByteSize`: a number of bytes that parses and prints human units the way Flink does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const PIB: u64 = 1 << 50;
const EIB: u64 = 1 << 60;

/// The binary units, largest first, that sizes are printed in.
const UNITS: [(u64, &str); 6] =
    [(EIB, "EiB"), (PIB, "PiB"), (TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];

/// A number of bytes.
///
/// Parses Flink's memory sizes, where every unit is binary: `2g`, `2gb`, `2 GiB` and
/// `2 gibibytes` all mean 2 × 2³⁰ bytes, `512m` and `1024mb` are MiB, a bare number is bytes,
/// and a decimal point is allowed (`1.5 GiB`). Prints exactly when it can: in the largest
/// binary unit that fits, to at most one decimal (`2 GiB`, `1.5 GiB`), else as a whole
/// number of a smaller unit (`3892 MiB`); otherwise rounded to one decimal (`204.8 MiB`),
/// to which the alternate form (`{:#}`) adds the exact byte count.
///
/// Serialized as a number of bytes; deserialized from a number of bytes or a string in the
/// units above.
///
/// ```
/// use weir_memory::ByteSize;
///
/// assert_eq!("512m".parse::<ByteSize>(), Ok(ByteSize::mib(512)));
/// assert_eq!("1.5 GiB".parse::<ByteSize>(), Ok(ByteSize::mib(1536)));
/// assert_eq!(ByteSize::mib(1536).to_string(), "1.5 GiB");
/// assert_eq!(ByteSize::gib(2).to_string(), "2 GiB");
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "SizeRepr", into = "u64")]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn b(n: u64) -> Self {
        Self(n)
    }

    /// `n` KiB.
    pub const fn kib(n: u64) -> Self {
        Self(n * KIB)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n * MIB)
    }

    /// `n` GiB.
    pub const fn gib(n: u64) -> Self {
        Self(n * GIB)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The number of whole MiB, rounded down.
    pub(crate) const fn whole_mib(self) -> u64 {
        self.0 / MIB
    }

    /// The number of MiB, rounded up.
    pub(crate) const fn mib_ceil(self) -> u64 {
        self.0.div_ceil(MIB)
    }

    /// `fraction` of this size (any non-negative factor), rounded down to a byte.
    pub fn times(self, fraction: f64) -> Self {
        // `as` saturates, and the fractions are in [0, 1), so this never exceeds `self`.
        Self((self.0 as f64 * fraction) as u64)
    }

    /// This size less `other`, or zero when `other` is larger.
    pub(crate) const fn saturating_sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }

    /// The sum of two sizes, or `u64::MAX` bytes when it overflows.
    pub(crate) const fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl From<ByteSize> for u64 {
    fn from(size: ByteSize) -> Self {
        size.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(&(unit, name)) = UNITS.iter().find(|(unit, _)| self.0 >= *unit) else {
            return write!(f, "{} B", self.0);
        };
        let tenths = u128::from(self.0) * 10;
        if self.0.is_multiple_of(unit) {
            write!(f, "{} {name}", self.0 / unit)
        } else if tenths % u128::from(unit) == 0 {
            write!(f, "{} {name}", (tenths / u128::from(unit)) as f64 / 10.0)
        } else if let Some(&(smaller, name)) =
            UNITS.iter().find(|(u, _)| *u < unit && self.0.is_multiple_of(*u))
        {
            write!(f, "{} {name}", self.0 / smaller)
        } else if f.alternate() {
            write!(f, "{:.1} {name} ({} B)", self.0 as f64 / unit as f64, self.0)
        } else {
            write!(f, "{:.1} {name}", self.0 as f64 / unit as f64)
        }
    }
}

/// Why a string is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size '{input}': {reason} (write a number and a unit, e.g. 2g, 512m, 1024mb or \
     1.5 GiB; all units are binary, as in Flink)"
)]
pub struct ParseSizeError {
    input: String,
    reason: String,
}

impl FromStr for ByteSize {
    type Err = ParseSizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ParseSizeError { input: input.to_string(), reason };
        let text = input.trim();
        let number_len =
            text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(number_len);
        let unit =
            binary_unit(unit.trim()).ok_or_else(|| error(format!("unknown unit '{unit}'")))?;
        let value: f64 =
            number.parse().map_err(|_| error(format!("'{number}' is not a number")))?;
        if value * unit.factor as f64 >= u64::MAX as f64 {
            return Err(error("too large: the largest size is 16 EiB".to_string()));
        }
        // bytesize does the arithmetic (exact for integers); the unit is already binary.
        bytesize::ByteSize::from_str(&format!("{number} {}", unit.name))
            .map(|size| Self(size.as_u64()))
            .map_err(error)
    }
}

/// A binary unit as bytesize spells it.
struct Unit {
    name: &'static str,
    factor: u64,
}

/// The binary unit a Flink-style unit stands for: `k`, `kb`, `KiB` and `kibibytes` are all
/// 1024 bytes (case-insensitive); no unit is bytes.
fn binary_unit(unit: &str) -> Option<Unit> {
    let unit = unit.to_ascii_lowercase();
    let (name, factor) = match unit.as_str() {
        "" | "b" | "bytes" => ("B", 1),
        "k" | "kb" | "ki" | "kib" | "kibibytes" => ("KiB", KIB),
        "m" | "mb" | "mi" | "mib" | "mebibytes" => ("MiB", MIB),
        "g" | "gb" | "gi" | "gib" | "gibibytes" => ("GiB", GIB),
        "t" | "tb" | "ti" | "tib" | "tebibytes" => ("TiB", TIB),
        "p" | "pb" | "pi" | "pib" | "pebibytes" => ("PiB", PIB),
        _ => return None,
    };
    Some(Unit { name, factor })
}

/// What a size may be written as in a configuration file or resource.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for ByteSize {
    type Error = ParseSizeError;

    fn try_from(repr: SizeRepr) -> Result<Self, Self::Error> {
        match repr {
            SizeRepr::Bytes(bytes) => Ok(Self(bytes)),
            SizeRepr::Text(text) => text.parse(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flink_and_iec_units_as_binary() {
        let cases = [
            ("2g", ByteSize::gib(2)),
            ("2G", ByteSize::gib(2)),
            ("2gb", ByteSize::gib(2)),
            ("2 GiB", ByteSize::gib(2)),
            ("2gibibytes", ByteSize::gib(2)),
            ("512m", ByteSize::mib(512)),
            ("1024mb", ByteSize::gib(1)),
            ("1.5 GiB", ByteSize::mib(1536)),
            ("32k", ByteSize::kib(32)),
            ("64 KiB", ByteSize::kib(64)),
            ("1t", ByteSize::gib(1024)),
            ("4096", ByteSize::b(4096)),
            ("100 bytes", ByteSize::b(100)),
            (" 256 mb ", ByteSize::mib(256)),
            ("0", ByteSize::b(0)),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<ByteSize>(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for text in ["", "g", "-1g", "2x", "2 gigs", "1.2.3m", "20 EiB", "17000p"] {
            let error = text.parse::<ByteSize>().expect_err(text);
            assert!(error.to_string().starts_with(&format!("invalid size '{text}'")), "{error}");
        }
    }

    #[test]
    fn prints_exactly_when_whole_and_to_one_decimal_otherwise() {
        assert_eq!(ByteSize::b(0).to_string(), "0 B");
        assert_eq!(ByteSize::b(1000).to_string(), "1000 B");
        assert_eq!(ByteSize::kib(32).to_string(), "32 KiB");
        assert_eq!(ByteSize::mib(256).to_string(), "256 MiB");
        assert_eq!(ByteSize::gib(16).to_string(), "16 GiB");
        assert_eq!(ByteSize::mib(1536).to_string(), "1.5 GiB");
        assert_eq!(ByteSize::mib(3892).to_string(), "3892 MiB");
        assert_eq!(ByteSize::kib(1025).to_string(), "1025 KiB");
        assert_eq!(ByteSize::gib(2).times(0.1).to_string(), "204.8 MiB");
        assert_eq!(format!("{:#}", ByteSize::gib(2).times(0.1)), "204.8 MiB (214748364 B)");
        assert_eq!(format!("{:#}", ByteSize::mib(64)), "64 MiB");
    }

    #[test]
    fn serializes_as_bytes_and_reads_bytes_or_units() {
        assert_eq!(serde_json::to_string(&ByteSize::mib(1)).unwrap(), "1048576");
        assert_eq!(serde_json::from_str::<ByteSize>("1048576").unwrap(), ByteSize::mib(1));
        assert_eq!(serde_json::from_str::<ByteSize>("\"1m\"").unwrap(), ByteSize::mib(1));
        assert!(serde_json::from_str::<ByteSize>("\"1 parsec\"").is_err());
        assert!(serde_json::from_str::<ByteSize>("-1").is_err());
    }
}
