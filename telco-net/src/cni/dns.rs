//! [`Dns`]: resolver settings, as CNI results and network-status entries carry them.

use serde::{Deserialize, Serialize};

/// Resolver settings: the `dns` object of a CNI result (CNI spec "Success") and of a network-status
/// entry. Empty fields are left out when serialised, as libcni does.
///
/// The `dns` runtime capability uses other key names (`servers`, `searches`, `options`) and is not
/// this type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dns {
    /// `nameservers`: resolver addresses, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// `domain`: the local domain used for short names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `search`: search domains, in priority order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// `options`: resolver options such as `ndots:5`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// Returns true when no field is set, which is when serialisers leave the object out.
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.as_deref().is_none_or(str::is_empty)
            && self.search.is_empty()
            && self.options.is_empty()
    }
}
