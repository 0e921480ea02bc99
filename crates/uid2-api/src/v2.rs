//! One module per endpoint of the public API.

pub(crate) mod identity_buckets;
pub(crate) mod identity_map_v2;
pub(crate) mod identity_map_v3;
pub(crate) mod keys;
pub(crate) mod optout_status;
pub(crate) mod token_client_generate;
pub(crate) mod token_generate;
pub(crate) mod token_logout;
pub(crate) mod token_refresh;
pub(crate) mod token_validate;
