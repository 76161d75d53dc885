//! Feeds: hospital systems whose own traffic becomes encounters. Admins
//! manage them (`admin`); HL7 v2 messages arrive over a real MLLP
//! connection (`mllp` for the framing, `hl7` for what each message does,
//! `visit` for a whole visit told both ways).

mod admin;
mod fhir;
mod hl7;
mod hostile;
mod mllp;
mod readme;
mod tls;
mod visit;
