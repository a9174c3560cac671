//! Request signing: RPC signature V1 (HMAC-SHA1) and ACS3-HMAC-SHA256 (V3).
//!
//! Pure functions: the caller supplies the timestamp and nonce, so the same inputs always
//! give the same signature. The client signs with these; the emulator verifies with the same
//! code, so only the known-answer vectors under `tests/data/vectors/` (produced by the
//! official SDKs) can catch a bug both sides would share.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};

/// RFC 3986 percent-encoding of UTF-8 bytes: only `A-Z a-z 0-9 - _ . ~` stay literal, every
/// other byte becomes `%XY` (upper-case hex). A space is `%20`, never `+`.
pub fn percent_encode(s: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

/// `k=v&...` with every key and value percent-encoded, sorted by raw key (byte order).
/// `params` must not contain `Signature`.
pub fn canonicalized_query_v1(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD&%2F&percent_encode(canonicalized query)`.
pub fn string_to_sign_v1(method: &str, params: &BTreeMap<String, String>) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonicalized_query_v1(params))
    )
}

/// base64(HMAC-SHA1(secret + "&", string_to_sign)).
pub fn sign_v1(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let sts = string_to_sign_v1(method, params);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(sts.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` scheme name of signature V3.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Lower-case hex SHA-256 of the exact body bytes (`x-acs-content-sha256`); an empty body
/// gives `e3b0c442…b855`.
pub fn hashed_payload_v3(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// V3 canonical query: keys sorted by raw bytes and written **unencoded** (as the SDK does),
/// values RFC 3986 percent-encoded; an empty value is written `Key=`.
pub fn canonical_query_v3(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The V3 canonical request.
///
/// `headers` holds exactly the signed headers, names lower-cased; values are trimmed here.
/// A verifier builds it from the `SignedHeaders` list of the `Authorization` header.
pub fn canonical_request_v3(
    method: &str,
    pathname: &str,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    hashed_payload: &str,
) -> String {
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{}:{}\n", k.to_ascii_lowercase(), v.trim()))
        .collect();
    let signed = signed_headers_v3(headers);
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        pathname,
        canonical_query_v3(query),
        canonical_headers,
        signed,
        hashed_payload
    )
}

/// Signed header names, lower-cased, sorted, joined with `;`.
pub fn signed_headers_v3(headers: &BTreeMap<String, String>) -> String {
    let mut names: Vec<String> = headers.keys().map(|k| k.to_ascii_lowercase()).collect();
    names.sort();
    names.join(";")
}

/// `ACS3-HMAC-SHA256\n` + hex(SHA-256(canonical request)).
pub fn string_to_sign_v3(canonical_request: &str) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        hashed_payload_v3(canonical_request.as_bytes())
    )
}

/// Lower-case hex HMAC-SHA256 keyed with the plain secret (no `&` suffix, unlike V1).
pub fn sign_v3(string_to_sign: &str, secret: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The whole `Authorization` header value for a V3 request.
pub fn authorization_v3(
    method: &str,
    pathname: &str,
    query: &BTreeMap<String, String>,
    headers: &BTreeMap<String, String>,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
) -> String {
    let cr = canonical_request_v3(method, pathname, query, headers, &hashed_payload_v3(body));
    let sig = sign_v3(&string_to_sign_v3(&cr), secret);
    format!(
        "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={sig}",
        signed_headers_v3(headers)
    )
}

/// The parts of a V3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV3 {
    pub access_key_id: String,
    /// Lower-cased header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parse `ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..`; `None` when the
/// value is not a V3 authorization.
pub fn parse_authorization_v3(value: &str) -> Option<AuthorizationV3> {
    let rest = value.trim().strip_prefix(V3_ALGORITHM)?;
    let mut id = None;
    let mut signed = None;
    let mut sig = None;
    for part in rest.trim().split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => id = Some(v.trim().to_string()),
            "SignedHeaders" => {
                signed = Some(
                    v.trim()
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.to_ascii_lowercase())
                        .collect(),
                )
            }
            "Signature" => sig = Some(v.trim().to_string()),
            _ => {}
        }
    }
    Some(AuthorizationV3 {
        access_key_id: id?,
        signed_headers: signed?,
        signature: sig?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct V1File {
        vectors: Vec<V1Vector>,
    }
    #[derive(serde::Deserialize)]
    struct V1Vector {
        name: String,
        method: String,
        params: BTreeMap<String, String>,
        access_key_secret: String,
        canonicalized_query_string: String,
        string_to_sign: String,
        signature: String,
    }

    #[test]
    fn v1_passes_every_sdk_vector() {
        let text = include_str!("../../tests/data/vectors/signature-v1.json");
        let file: V1File = serde_json::from_str(text).unwrap();
        assert!(file.vectors.len() >= 22);
        for v in &file.vectors {
            assert_eq!(
                canonicalized_query_v1(&v.params),
                v.canonicalized_query_string,
                "{}",
                v.name
            );
            assert_eq!(
                string_to_sign_v1(&v.method, &v.params),
                v.string_to_sign,
                "{}",
                v.name
            );
            assert_eq!(
                sign_v1(&v.method, &v.params, &v.access_key_secret),
                v.signature,
                "{}",
                v.name
            );
        }
    }

    #[derive(serde::Deserialize)]
    struct V3File {
        vectors: Vec<V3Vector>,
    }
    #[derive(serde::Deserialize)]
    struct V3Vector {
        name: String,
        method: String,
        pathname: String,
        query: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
        body: Option<String>,
        access_key_id: String,
        access_key_secret: String,
        hashed_payload: String,
        canonical_query_string: String,
        canonical_request: String,
        string_to_sign: String,
        signature: String,
        authorization: String,
    }

    #[test]
    fn v3_passes_every_sdk_vector() {
        let text = include_str!("../../tests/data/vectors/signature-v3.json");
        let file: V3File = serde_json::from_str(text).unwrap();
        assert!(file.vectors.len() >= 8);
        for v in &file.vectors {
            let body = v.body.as_deref().unwrap_or("").as_bytes();
            assert_eq!(hashed_payload_v3(body), v.hashed_payload, "{}", v.name);
            assert_eq!(
                canonical_query_v3(&v.query),
                v.canonical_query_string,
                "{}",
                v.name
            );
            let cr = canonical_request_v3(
                &v.method,
                &v.pathname,
                &v.query,
                &v.headers,
                &v.hashed_payload,
            );
            assert_eq!(cr, v.canonical_request, "{}", v.name);
            assert_eq!(string_to_sign_v3(&cr), v.string_to_sign, "{}", v.name);
            assert_eq!(
                sign_v3(&v.string_to_sign, &v.access_key_secret),
                v.signature,
                "{}",
                v.name
            );
            let auth = authorization_v3(
                &v.method,
                &v.pathname,
                &v.query,
                &v.headers,
                body,
                &v.access_key_id,
                &v.access_key_secret,
            );
            assert_eq!(auth, v.authorization, "{}", v.name);
            let parsed = parse_authorization_v3(&v.authorization).unwrap();
            assert_eq!(parsed.access_key_id, v.access_key_id);
            assert_eq!(parsed.signature, v.signature);
            assert_eq!(
                parsed.signed_headers.join(";"),
                signed_headers_v3(&v.headers)
            );
        }
    }

    #[test]
    fn v3_authorization_parse_rejects_other_schemes() {
        assert!(parse_authorization_v3("Bearer x").is_none());
        assert!(parse_authorization_v3("ACS3-HMAC-SHA256 Credential=a").is_none());
    }

    #[test]
    fn percent_encode_follows_rfc3986() {
        assert_eq!(percent_encode("a b*~"), "a%20b%2A~");
        assert_eq!(percent_encode("智"), "%E6%99%BA");
    }
}
