"""The built-in issuing CA and certificate status for relying parties."""
