//! serde helpers for the proto3-JSON mapping.

use base64::Engine as _;
use serde::{de, Deserialize, Deserializer, Serializer};

/// `bytes` fields: standard base64 out; standard or URL-safe, padded or not, in.
pub mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        decode(s.as_deref().unwrap_or("")).map_err(de::Error::custom)
    }

    /// Decode any base64 flavour the proto3-JSON spec allows.
    pub fn decode(s: &str) -> Result<Vec<u8>, String> {
        let trimmed = s.trim_end_matches('=');
        let normalized: String = trimmed.chars().map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        }).collect();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(normalized.as_bytes())
            .map_err(|e| format!("invalid base64: {e}"))
    }
}

/// Number-or-string input for integer fields.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    I(i64),
    U(u64),
    F(f64),
    S(String),
}

fn to_i128(v: NumOrStr) -> Result<i128, String> {
    match v {
        NumOrStr::I(i) => Ok(i128::from(i)),
        NumOrStr::U(u) => Ok(i128::from(u)),
        NumOrStr::F(f) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i128),
        NumOrStr::F(f) => Err(format!("{f} is not an integer")),
        NumOrStr::S(s) => s.trim().parse::<i128>().map_err(|e| format!("invalid integer {s:?}: {e}")),
    }
}

/// `int64`/`uint64` fields: a string out, a number or a string in (null is 0).
pub mod int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Option::<NumOrStr>::deserialize(d)? {
            None => Ok(0),
            Some(v) => {
                let n = to_i128(v).map_err(de::Error::custom)?;
                i64::try_from(n).map_err(|_| de::Error::custom("integer out of range for int64"))
            }
        }
    }
}

/// 32-bit unsigned fields: a number out, a number or a string in (null is 0).
pub mod uint32 {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        match Option::<NumOrStr>::deserialize(d)? {
            None => Ok(0),
            Some(v) => {
                let n = to_i128(v).map_err(de::Error::custom)?;
                u32::try_from(n).map_err(|_| de::Error::custom("integer out of range for uint32"))
            }
        }
    }
}

/// 32-bit signed fields: a number out, a number or a string in (null is 0).
pub mod int32 {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        match Option::<NumOrStr>::deserialize(d)? {
            None => Ok(0),
            Some(v) => {
                let n = to_i128(v).map_err(de::Error::custom)?;
                i32::try_from(n).map_err(|_| de::Error::custom("integer out of range for int32"))
            }
        }
    }
}

/// Repeated, map and message fields: `null` means the default value.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Whether a value is its type's default (proto3 JSON may omit those).
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Define a proto enum that serializes by name and deserializes from its name or number.
#[macro_export]
macro_rules! proto_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $num:expr => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            #[default]
            $($variant),+
        }

        impl $name {
            /// The enum's wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            /// The enum's number.
            pub fn number(self) -> i32 {
                match self { $($name::$variant => $num),+ }
            }
            /// Parse from a wire name or number.
            pub fn from_number(n: i64) -> Option<Self> {
                $(if n == $num { return Some($name::$variant); })+
                None
            }
            /// Parse from a wire name.
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let parsed = match &v {
                    serde_json::Value::Null => Some($name::default()),
                    serde_json::Value::String(s) => $name::from_name(s),
                    serde_json::Value::Number(n) => n.as_i64().and_then($name::from_number),
                    _ => None,
                };
                parsed.ok_or_else(|| serde::de::Error::custom(format!(
                    "invalid value {} for enum {}", v, stringify!($name))))
            }
        }
    };
}

/// Format seconds and nanoseconds since the Unix epoch as an RFC 3339 UTC timestamp
/// (the proto3-JSON form of `google.protobuf.Timestamp`).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if nanos == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, 5), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn base64_flavours() {
        assert_eq!(b64::decode("aGk=").unwrap(), b"hi");
        assert_eq!(b64::decode("aGk").unwrap(), b"hi");
        assert_eq!(b64::decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(b64::decode("!!").is_err());
    }
}
