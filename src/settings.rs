//! Settings: how to run (endpoints, region, owner, credentials source, interval, listen
//! address), never what should exist. Precedence: defaults < config file < `IMMCTL_*`
//! environment < flags; every wrong value is reported with where it came from.
