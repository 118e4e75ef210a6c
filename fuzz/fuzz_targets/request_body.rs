//! Request decoding: any bytes as a body, read the way every profile reads bodies.
#![no_main]

use auth_core::validate::{Fields, check_email, email_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for parse in [Fields::parse, Fields::parse_optional] {
        let Ok(mut fields) = parse(data) else { continue };
        let _ = fields.email("email");
        let _ = fields.new_password("password");
        let _ = fields.presented_password("current_password");
        let _ = fields.optional_name("full_name");
        let _ = fields.optional_integer("expires_in");
        let _ = fields.patch_string("phone");
        let _ = fields.patch_uuid("organization_id");
        let _ = fields.optional_bool("is_active");
        let _ = fields.optional_string_array("roles");
        let _ = fields.optional_object("attributes");
        let _ = fields.finish();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = check_email(text);
        let _ = email_key(text);
        let _ = auth_core::http::is_json_media_type(text);
    }
});
