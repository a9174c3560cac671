//! The emulator's side of the wire: decoding parameters (query + form body, `+` as space,
//! strict UTF-8), typed parameter access with the services' validation codes, and the error
//! envelope `{RequestId, HostId, Code, Message, Recommend[, AccessDeniedDetail]}`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Which product a call is for (dispatch is on the API version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    Ram,
    Imm,
    Sts,
}

impl Product {
    pub fn from_version(v: &str) -> Option<Product> {
        match v {
            "2015-05-01" => Some(Product::Ram),
            "2020-09-30" => Some(Product::Imm),
            "2015-04-01" => Some(Product::Sts),
            _ => None,
        }
    }

    /// `HostId` of error envelopes.
    pub fn host(self, region: &str) -> String {
        match self {
            Product::Ram => "ram.aliyuncs.com".to_string(),
            Product::Imm => format!("imm.{region}.aliyuncs.com"),
            Product::Sts => "sts.aliyuncs.com".to_string(),
        }
    }

    /// The `product=` value of `Recommend` links.
    pub fn recommend_name(self) -> &'static str {
        match self {
            Product::Ram => "Ram",
            Product::Imm => "imm",
            Product::Sts => "Sts",
        }
    }
}

/// An API error as the service answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub access_denied_detail: Option<Value>,
    /// Seconds for an `x-acs-retry-after` header (throttling faults only).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            access_denied_detail: None,
            retry_after: None,
        }
    }

    pub fn bad(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(400, code, message)
    }

    /// The envelope body for this error.
    pub fn body(&self, request_id: &str, product: Option<Product>, region: &str) -> Value {
        let host = product
            .map(|p| p.host(region))
            .unwrap_or_else(|| "aliyuncs.com".to_string());
        let recommend = match product {
            Some(Product::Imm) => format!(
                "https://next.api.aliyun.com/troubleshoot?q={}&product=imm",
                self.code
            ),
            Some(p) => format!(
                "https://api.aliyun.com/troubleshoot?q={}&product={}",
                self.code,
                p.recommend_name()
            ),
            None => format!("https://api.aliyun.com/troubleshoot?q={}", self.code),
        };
        let mut body = json!({
            "RequestId": request_id,
            "HostId": host,
            "Code": self.code,
            "Message": self.message,
            "Recommend": recommend,
        });
        if let Some(d) = &self.access_denied_detail {
            body["AccessDeniedDetail"] = d.clone();
        }
        body
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Why a raw request could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Decode `application/x-www-form-urlencoded` text: `+` is a space, `%XY` a byte; the
/// bytes must be UTF-8. Later duplicates win.
pub fn decode_form(text: &str) -> Result<Vec<(String, String)>, DecodeError> {
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode_component(k)?, decode_component(v)?));
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, DecodeError> {
    let replaced = s.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&replaced).collect();
    String::from_utf8(bytes).map_err(|_| {
        DecodeError(format!(
            "The request contains a parameter that is not valid UTF-8 after percent-decoding: {s:.64}"
        ))
    })
}

/// Every parameter of one call (query merged with a form body).
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, String>);

/// IMM reports parameter problems as `InvalidArgument`; RAM and STS as `InvalidParameter.*`.
impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A present, non-empty value.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// RAM/STS: required parameter (`MissingParameter`-style code `Missing<Name>`).
    pub fn required(&self, key: &str) -> ApiResult<&str> {
        self.non_empty(key).ok_or_else(|| {
            ApiError::bad(
                format!("Missing{key}"),
                format!("{key} is mandatory for this action."),
            )
        })
    }

    /// IMM: required parameter (`InvalidArgument`, the IMM doc's own example).
    pub fn required_imm(&self, key: &str) -> ApiResult<&str> {
        self.non_empty(key).ok_or_else(|| {
            ApiError::bad(
                "InvalidArgument",
                format!("The parameter {key} is required but not provided."),
            )
        })
    }

    /// Booleans are parsed case-insensitively (`True` from Python, `true` elsewhere).
    pub fn bool(&self, key: &str, code: &str) -> ApiResult<Option<bool>> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ApiError::bad(
                code,
                format!("The parameter {key} is not a valid boolean: {v:.64}"),
            )),
        }
    }

    pub fn int(&self, key: &str, code: &str) -> ApiResult<Option<i64>> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad(
                    code,
                    format!("The parameter {key} is not a valid integer: {v:.64}"),
                )
            }),
        }
    }

    /// A JSON-string parameter (`Tag`, `ResourceNames`, ...).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        code: &str,
    ) -> ApiResult<Option<T>> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(|e| {
                ApiError::bad(
                    code,
                    format!("The parameter {key} is not valid JSON of the expected shape: {e}"),
                )
            }),
        }
    }
}

/// A `Tag` item as requests carry it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TagParam {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

/// An upper-case UUID, like every RequestId.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// RAM / STS time format.
pub fn ram_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// IMM time format (RFC 3339 with nanoseconds).
pub fn imm_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_treats_plus_as_space_and_requires_utf8() {
        let d = decode_form("a=x+y%2Bz&b=%E6%99%BA&c&d=").unwrap();
        assert_eq!(
            d,
            vec![
                ("a".into(), "x y+z".into()),
                ("b".into(), "智".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into())
            ]
        );
        assert!(decode_form("a=%FF%FE").is_err());
    }

    #[test]
    fn booleans_are_case_insensitive() {
        let mut p = Params::default();
        p.0.insert("A".into(), "True".into());
        p.0.insert("B".into(), "false".into());
        p.0.insert("C".into(), "yes".into());
        assert_eq!(p.bool("A", "X").unwrap(), Some(true));
        assert_eq!(p.bool("B", "X").unwrap(), Some(false));
        assert_eq!(p.bool("C", "X").unwrap_err().code, "X");
    }
}
