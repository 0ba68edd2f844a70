fn main() {
    // Only the commands listed here get permissions generated; the capability file
    // then grants the main window exactly those it uses.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["app_info"])),
    )
    .expect("tauri build script failed");
}
