"""Court-ready evidence dossiers: case bundle, PDF rendering, PDF signature and offline verification."""
