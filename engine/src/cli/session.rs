//! `engine session`: the terminal connected to an engine over RESP.
