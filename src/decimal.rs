//! Decimal digits of an unsigned integer without the formatting machinery: audit records and
//! the rate-limit headers write several numbers on every request.

/// The decimal digits of a number, zero-padded to a minimum width (at most 20, the digits of
/// `u64::MAX`).
pub(crate) struct Decimal {
    digits: [u8; 20],
    from: usize,
}

impl Decimal {
    /// `n` in decimal.
    pub(crate) fn new(n: u64) -> Self {
        Self::padded(n, 1)
    }

    /// `n` in decimal, with leading zeros up to `width` digits.
    pub(crate) fn padded(mut n: u64, width: usize) -> Self {
        // Filled from the right, one division per digit.
        let mut digits = [b'0'; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            if let Some(d) = digits.get_mut(at) {
                *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        let width = width.clamp(1, digits.len());
        Decimal {
            digits,
            from: at.min(digits.len() - width),
        }
    }

    /// The digits.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.from..).unwrap_or_default()
    }

    /// The digits, as text.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    #[test]
    fn digits_match_display() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        assert_eq!(Decimal::padded(7, 3).as_str(), "007");
        assert_eq!(Decimal::padded(2026, 4).as_str(), "2026");
        assert_eq!(Decimal::padded(12_345, 2).as_str(), "12345");
        assert_eq!(Decimal::padded(0, 0).as_str(), "0");
        assert_eq!(Decimal::padded(5, 99).as_str(), "00000000000000000005");
    }
}
