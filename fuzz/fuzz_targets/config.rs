//! Any text, as the TOML configuration file: loaded and validated, or refused naming the key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(cfg) = vigil_config::Config::from_toml(text, "fuzz.toml") {
        let _ = cfg.validate("fuzz.toml");
        let _ = cfg.listen_addr();
    }
});
