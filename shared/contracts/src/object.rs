//! Structs read only from JSON objects.
//!
//! serde's derived `Deserialize` reads a struct from an array too, field by
//! field in order, so `["auth_1", 5, "EUR"]` would read as a
//! `PaymentAuthorized`, and `[[]]` as an SQS batch of no records. The
//! schemas say object, and so must the decoders:
//! - [`Object<T>`] reads any `T` only from an object;
//! - the contract's own structs are derived with `#[serde(remote =
//!   "Self")]`, which makes the derived code inherent functions, and
//!   `objects_only!` implements `Deserialize` around it (and `Serialize`,
//!   which the attribute turns inherent too).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A `T` read only from a JSON object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Members(PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> FromMap<'de> for Object<T> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// A type read from the members of a map.
pub(crate) trait FromMap<'de>: Sized {
    /// Reads it from `map`.
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// A visitor that accepts a map alone.
pub(crate) struct Members<T>(pub(crate) PhantomData<T>);

impl<'de, T: FromMap<'de>> Visitor<'de> for Members<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

/// `Deserialize` and `Serialize` for structs derived with `#[serde(remote
/// = "Self")]`: read only from an object, written as derived.
macro_rules! objects_only {
    ($($name:ident),* $(,)?) => {$(
        impl<'de> $crate::object::FromMap<'de> for $name {
            fn from_map<A: serde::de::MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
                $name::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_map($crate::object::Members(std::marker::PhantomData))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $name::serialize(self, serializer)
            }
        }
    )*};
}

pub(crate) use objects_only;
