//! Publishing input: the dynamic value both encodings decode into, the tnetstring codec, the
//! publish item schema (spec 5.2) and the envelopes it arrives in (control API body, command
//! socket args, ZeroMQ PULL/SUB frames).

pub mod item;
pub mod request;
pub mod tnetstring;
pub mod value;

pub use item::{
    parse_item, Action, HttpResponseFormat, HttpStreamFormat, Item, WsMessageFormat, WsType,
};
pub use request::{parse_items, parse_publish_body, parse_zmq_frame, PUBLISH_FRAME_MAX};
pub use tnetstring::{TnetError, TNET_DEPTH_MAX, TNET_SIZE_MAX};
pub use value::Value;
