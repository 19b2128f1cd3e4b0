// Loads the wasm client. Kept in a file (not inline) so the CSP can forbid inline scripts.
import init from '/pkg/handoff_web.js';
init();
