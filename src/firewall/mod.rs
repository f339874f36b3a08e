//! IP allowlists, declared routes, sunsets and transport rules (feature `firewall`).
