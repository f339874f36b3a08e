//! Values checked while the file is read, so a bad one is reported at its own line.

use crate::fhir::{Interaction, ResourceType};
use crate::limit::Rate;
use crate::smart::token::Algorithm;
use crate::smart::{Permissions, Scope};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// Declares a value read from a TOML string through a checking function, with its schema.
macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident($inner:ty), $description:literal, |$text:ident| $parse:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let $text = String::deserialize(deserializer)?;
                let $text = $text.as_str();
                let parsed: Result<$inner, String> = $parse;
                parsed.map($name).map_err(D::Error::custom)
            }
        }

        #[cfg(feature = "schema")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "description": $description })
            }
        }
    };
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

text_value!(
    /// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
    Cidr(String),
    "An IP network in CIDR notation (10.0.0.0/8, 2001:db8::/32) or a single address.",
    |text| match crate::net::IpNetworks::new([text]) {
        Ok(_) => Ok(text.trim().to_owned()),
        Err(_) => Err(format!(
            "{:?} is not an IP network in CIDR notation (like 10.0.0.0/8 or 2001:db8::/32)",
            clip(text)
        )),
    }
);

/// Reads `N/unit`.
fn parse_rate(text: &str) -> Result<Option<Rate>, String> {
    let bad = || {
        format!(
            "{:?} is not a rate (expected N/second|minute|hour|day, or \"off\")",
            clip(text)
        )
    };
    let text = text.trim();
    if text == "off" {
        return Ok(None);
    }
    let (n, unit) = text.split_once('/').ok_or_else(bad)?;
    let n: u64 = n.trim().replace('_', "").parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "{:?}: a rate of zero would refuse everything; use \"off\" for no budget, or a positive number",
            clip(text)
        ));
    }
    let seconds = match unit.trim() {
        "second" | "s" | "sec" => 1,
        "minute" | "min" | "m" => 60,
        "hour" | "h" => 3600,
        "day" | "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Some(Rate::new(n, Duration::from_secs(seconds))))
}

text_value!(
    /// A budget rate: `N/second`, `N/minute`, `N/hour`, `N/day`, or `off`.
    RateSpec(Option<Rate>),
    "A rate: N/second, N/minute, N/hour or N/day, or \"off\".",
    |text| parse_rate(text)
);

text_value!(
    /// An R4 resource type name (`Patient`).
    ResourceTypeName(ResourceType),
    "An R4 resource type name, case-sensitive (Patient).",
    |text| ResourceType::from_name(text)
        .ok_or_else(|| format!("{:?} is not an R4 resource type", clip(text)))
);

text_value!(
    /// An R4 RESTful interaction code (`read`, `search-type`, `transaction` ...).
    InteractionCode(Interaction),
    "An R4 RESTful interaction code: read, vread, update, patch, delete, history-instance, history-type, create, search-type, transaction, batch, search-system, history-system.",
    |text| Interaction::from_restful_code(&Interaction::TYPE_RESTFUL, text)
        .or_else(|| Interaction::from_restful_code(&Interaction::SYSTEM_RESTFUL, text))
        .ok_or_else(|| format!(
            "{:?} is not an R4 interaction code (read, vread, update, patch, delete, history-instance, history-type, create, search-type, transaction, batch, search-system, history-system)",
            clip(text)
        ))
);

text_value!(
    /// SMART v2 permissions: `c r u d s` in this order (`rs`, `cruds`).
    PermissionLetters(Permissions),
    "SMART v2 permissions: c, r, u, d, s in this order, at least one (rs, cruds).",
    |text| Permissions::parse_v2(text)
        .ok_or_else(|| format!("{:?} is not SMART v2 permissions (c r u d s in this order, like \"rs\")", clip(text)))
);

text_value!(
    /// A JWS algorithm name (`ES256`, `RS256` ...; never `none`).
    AlgorithmName(Algorithm),
    "A JWS algorithm: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512.",
    |text| Algorithm::from_name(text)
        .ok_or_else(|| format!("{:?} is not an accepted JWS algorithm (RS256 ... ES256, ES384, EdDSA; never none)", clip(text)))
);

text_value!(
    /// A SMART scope (`patient/*.rs`, `user/Observation.rs?category=laboratory`, `openid`).
    ScopeText(String),
    "A SMART scope (patient/*.rs, user/Observation.rs?category=laboratory, openid).",
    |text| match Scope::parse(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(format!("{:?} is not a SMART scope: {e}", clip(text))),
    }
);

text_value!(
    /// An HTTP header name.
    HeaderNameText(http::HeaderName),
    "An HTTP header name.",
    |text| http::HeaderName::from_bytes(text.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP header name", clip(text)))
);

text_value!(
    /// A point in time: an RFC 3339 timestamp (`2026-01-01T00:00:00Z`) or a TOML date-time.
    Timestamp(i64),
    "An RFC 3339 timestamp with offset (2026-01-01T00:00:00Z).",
    |text| text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| format!("{:?} is not an RFC 3339 timestamp with offset (like 2026-01-01T00:00:00Z)", clip(text)))
);

text_value!(
    /// An absolute `https` URL (`http` only for `localhost` and `127.0.0.1`, for tests).
    HttpsUrl(String),
    "An absolute https URL.",
    |text| {
        let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|p| text.starts_with(p));
        match text.parse::<http::Uri>() {
            Ok(uri) if uri.host().is_some() && (uri.scheme_str() == Some("https") || local) => Ok(text.to_owned()),
            _ => Err(format!("{:?} is not an absolute https URL", clip(text))),
        }
    }
);

/// The status of a hidden resource: 404 (the default) or 403.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HiddenStatus(pub http::StatusCode);

impl<'de> Deserialize<'de> for HiddenStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u16::deserialize(deserializer)? {
            404 => Ok(HiddenStatus(http::StatusCode::NOT_FOUND)),
            403 => Ok(HiddenStatus(http::StatusCode::FORBIDDEN)),
            other => Err(D::Error::custom(format!(
                "{other} is not a status for hidden resources (404 or 403)"
            ))),
        }
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for HiddenStatus {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HiddenStatus".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer", "enum": [404, 403] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(
            parse_rate("600/minute").unwrap(),
            Some(Rate::per_minute(600))
        );
        assert_eq!(parse_rate("off").unwrap(), None);
        for bad in ["30/minit", "x/minute", "30", "0/second", "-1/hour", ""] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
