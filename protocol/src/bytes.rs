use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Binary data on the wire: unpadded URL-safe base64 in JSON.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct B64(pub Vec<u8>);

impl B64 {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    /// Encodes as the wire text.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }
    /// Decodes wire text; `None` if it is not unpadded URL-safe base64.
    pub fn decode(s: &str) -> Option<Self> {
        URL_SAFE_NO_PAD.decode(s).ok().map(Self)
    }
}

impl std::fmt::Debug for B64 {
    // Never print key material in logs: only the length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "B64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for B64 {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl Serialize for B64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64::decode(&s).ok_or_else(|| serde::de::Error::custom("expected unpadded URL-safe base64"))
    }
}

/// In the OpenAPI document: a string of unpadded URL-safe base64.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for B64 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Za-z0-9_-]*$"))
            .content_encoding("base64url")
            .description(Some("Binary data: unpadded URL-safe base64."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for B64 {}
