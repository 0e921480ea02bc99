//! Roles of client keys, services and service links.
//!
//! The names are those of the reference's `Role` enum. Two parsing modes exist because the
//! reference has two: client keys and service links go through Jackson, configured to match enum
//! names case-insensitively and to map unknown names to `UNKNOWN` (the sample clients carry
//! `OPTOUT_CHECKER` and `THIS_IS_NOT_A_REAL_ROLE`); services use `Enum.valueOf`, which takes only
//! exact names.

/// A role a key or link may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Generator,
    Mapper,
    IdReader,
    Sharer,
    Operator,
    Optout,
    OptoutService,
    ClientkeyIssuer,
    OperatorManager,
    SecretManager,
    Administrator,
    SharingPortal,
    PrivateSiteRefresher,
    Maintainer,
    Privileged,
    SuperUser,
    SecretRotation,
    PrivateOperatorSync,
    MetricsExport,
    EnclaveRegistrar,
    AdminReadOnly,
    AdminCreate,
    /// Any name the enum does not know.
    Unknown,
}

impl Role {
    const ALL: [(Role, &'static str); 23] = [
        (Role::Generator, "GENERATOR"),
        (Role::Mapper, "MAPPER"),
        (Role::IdReader, "ID_READER"),
        (Role::Sharer, "SHARER"),
        (Role::Operator, "OPERATOR"),
        (Role::Optout, "OPTOUT"),
        (Role::OptoutService, "OPTOUT_SERVICE"),
        (Role::ClientkeyIssuer, "CLIENTKEY_ISSUER"),
        (Role::OperatorManager, "OPERATOR_MANAGER"),
        (Role::SecretManager, "SECRET_MANAGER"),
        (Role::Administrator, "ADMINISTRATOR"),
        (Role::SharingPortal, "SHARING_PORTAL"),
        (Role::PrivateSiteRefresher, "PRIVATE_SITE_REFRESHER"),
        (Role::Maintainer, "MAINTAINER"),
        (Role::Privileged, "PRIVILEGED"),
        (Role::SuperUser, "SUPER_USER"),
        (Role::SecretRotation, "SECRET_ROTATION"),
        (Role::PrivateOperatorSync, "PRIVATE_OPERATOR_SYNC"),
        (Role::MetricsExport, "METRICS_EXPORT"),
        (Role::EnclaveRegistrar, "ENCLAVE_REGISTRAR"),
        (Role::AdminReadOnly, "ADMIN_READ_ONLY"),
        (Role::AdminCreate, "ADMIN_CREATE"),
        (Role::Unknown, "UNKNOWN"),
    ];

    /// The enum name, as the reference writes it.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(role, _)| *role == self)
            .map_or("UNKNOWN", |(_, name)| name)
    }

    /// Jackson's lenient reading: case-insensitive, unknown names become [`Role::Unknown`].
    pub fn parse_lenient(name: &str) -> Role {
        Self::ALL
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map_or(Role::Unknown, |(role, _)| *role)
    }

    /// `Enum.valueOf`: the exact name or nothing.
    pub fn parse_exact(name: &str) -> Option<Role> {
        Self::ALL
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(role, _)| *role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parsing_is_case_insensitive_and_total() {
        assert_eq!(Role::parse_lenient("MAPPER"), Role::Mapper);
        assert_eq!(Role::parse_lenient("id_reader"), Role::IdReader);
        assert_eq!(Role::parse_lenient("Optout_Service"), Role::OptoutService);
        assert_eq!(Role::parse_lenient("OPTOUT_CHECKER"), Role::Unknown);
        assert_eq!(Role::parse_lenient("THIS_IS_NOT_A_REAL_ROLE"), Role::Unknown);
        assert_eq!(Role::parse_lenient(""), Role::Unknown);
    }

    #[test]
    fn exact_parsing_takes_only_enum_names() {
        assert_eq!(Role::parse_exact("GENERATOR"), Some(Role::Generator));
        assert_eq!(Role::parse_exact("UNKNOWN"), Some(Role::Unknown));
        assert_eq!(Role::parse_exact("generator"), None);
        assert_eq!(Role::parse_exact("OPTOUT_CHECKER"), None);
    }

    #[test]
    fn names_round_trip() {
        for (role, name) in Role::ALL {
            assert_eq!(role.name(), name);
            assert_eq!(Role::parse_exact(name), Some(role));
        }
    }
}
