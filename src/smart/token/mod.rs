//! Bearer-token verification: signed JWTs against static keys or a JWKS, RFC 7662
//! introspection, and the verified-token cache.
