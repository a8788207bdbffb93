//! Each backend's helper functions under one name, for `on_db!(…, |pool, sql| …)`.

macro_rules! dialect {
    ($backend:ident) => {
        pub(crate) mod $backend {
            pub(crate) use crate::custom_fields::$backend::*;
            pub(crate) use crate::engine::chunk::$backend::*;
            pub(crate) use crate::engine::follow::$backend::*;
            pub(crate) use crate::engine::merge::$backend::*;
            pub(crate) use crate::engine::owners::$backend::*;
            pub(crate) use crate::engine::resolve::$backend::*;
            pub(crate) use crate::engine::write::$backend::*;
            pub(crate) use crate::engine::$backend::*;
            pub(crate) use crate::events::$backend::*;
            pub(crate) use crate::imports::$backend::*;
            pub(crate) use crate::records::deletes::$backend::*;
            pub(crate) use crate::records::filter::$backend::*;
            pub(crate) use crate::records::keys::$backend::*;
            pub(crate) use crate::records::$backend::*;
            pub(crate) use crate::rules::company::$backend::*;
            pub(crate) use crate::rules::contact::$backend::*;
            pub(crate) use crate::rules::order::$backend::*;
            pub(crate) use crate::rules::$backend::*;
            pub(crate) use crate::webhooks::queue::$backend::*;
        }
    };
}

dialect!(sqlite);
dialect!(postgres);
