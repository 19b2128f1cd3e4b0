//! The details a free sender (no account) types about the referring
//! provider, checked the same way by every client before they are sealed.
//! The server never sees them (they travel inside the sealed content), so
//! these checks are the clients' to make.

/// How many digits a BC MSP practitioner number has.
pub const MSP_DIGITS: usize = 5;

/// Why an MSP practitioner number cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MspError {
    /// Nothing was typed.
    #[error("Enter the provider's MSP practitioner number.")]
    Missing,
    /// Something other than digits (and spaces) was typed.
    #[error("An MSP practitioner number has digits only.")]
    NotDigits,
    /// The wrong number of digits.
    #[error("An MSP practitioner number has 5 digits.")]
    WrongLength,
}

/// Checks an MSP practitioner number as typed and returns it normalised:
/// spaces are ignored, and what is left must be exactly [`MSP_DIGITS`] ASCII digits.
pub fn msp_number(typed: &str) -> Result<String, MspError> {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.is_empty() {
        Err(MspError::Missing)
    } else if !digits.chars().all(|c| c.is_ascii_digit()) {
        Err(MspError::NotDigits)
    } else if digits.len() != MSP_DIGITS {
        Err(MspError::WrongLength)
    } else {
        Ok(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_msp_number_is_exactly_five_digits_and_spaces_are_ignored() {
        assert_eq!(msp_number("12345"), Ok("12345".into()));
        assert_eq!(msp_number(" 12 345 "), Ok("12345".into()));
        assert_eq!(msp_number(""), Err(MspError::Missing));
        assert_eq!(msp_number("   "), Err(MspError::Missing));
        assert_eq!(msp_number("1234"), Err(MspError::WrongLength));
        assert_eq!(msp_number("123456"), Err(MspError::WrongLength));
        assert_eq!(msp_number("1234a"), Err(MspError::NotDigits));
        assert_eq!(msp_number("12-345"), Err(MspError::NotDigits));
        // Non-ASCII digits are not MSP digits.
        assert_eq!(msp_number("١٢٣٤٥"), Err(MspError::NotDigits));
    }
}
