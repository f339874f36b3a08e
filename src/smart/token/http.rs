//! The small HTTP client side shared by JWKS fetching and introspection: https only (unless
//! explicitly allowed), no redirects, timeouts, and responses read up to a size cap.

use super::BuildError;
use reqwest::{Client, Response, StatusCode, Url};
use std::time::Duration;

/// Why a fetch failed. Never shown to clients; only decides between "use last-good" and
/// "unavailable".
#[derive(Debug)]
pub(crate) struct FetchFailed;

pub(crate) fn client(timeout: Duration) -> Result<Client, BuildError> {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect could move a key fetch to a host nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|_| BuildError::HttpClient)
}

/// An absolute `https` URL (or `http` when allowed), without credentials or fragment.
pub(crate) fn checked_url(url: &str, allow_http: bool) -> Result<Url, BuildError> {
    let bad = || BuildError::BadUrl(url.to_owned());
    let parsed = Url::parse(url).map_err(|_| bad())?;
    let scheme_ok = parsed.scheme() == "https" || (allow_http && parsed.scheme() == "http");
    if !scheme_ok
        || parsed.host_str().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(parsed)
}

/// The body of a `200 OK` response, refused when longer than `cap` bytes.
pub(crate) async fn read_capped(
    mut response: Response,
    cap: usize,
) -> Result<Vec<u8>, FetchFailed> {
    if response.status() != StatusCode::OK {
        return Err(FetchFailed);
    }
    let declared = response.content_length().unwrap_or(0);
    if usize::try_from(declared).map_or(true, |n| n > cap) {
        return Err(FetchFailed);
    }
    let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(cap));
    while let Some(chunk) = response.chunk().await.map_err(|_| FetchFailed)? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(FetchFailed);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs a JSON document.
pub(crate) async fn get_json(
    client: &Client,
    url: &Url,
    cap: usize,
) -> Result<Vec<u8>, FetchFailed> {
    let response = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|_| FetchFailed)?;
    read_capped(response, cap).await
}
