//! The emulator: a faithful stand-in for RAM 2015-05-01, IMM 2020-09-30 and STS 2015-04-01 on
//! one HTTP listener. Of our modules it uses only `cloud::signer`, `cloud` wire types and
//! `policy`.
