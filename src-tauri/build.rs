fn main() {
    // Only the commands listed here get permissions generated; the capability file
    // (capabilities/default.json) then grants the main window exactly these.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "app_status",
            "sign_in",
            "sign_out",
            "list_inspections",
            "open_inspection",
            "set_answer",
            "edit_note",
            "add_photo",
            "photo_thumbnail",
            "add_device",
            "record_observation",
            "add_finding",
            "add_comment",
            "resolve_conflict",
            "submit_inspection",
            "sign_off",
            "sync_status",
            "sync_now",
        ]),
    ))
    .expect("tauri build script failed");
}
