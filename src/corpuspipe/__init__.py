"""corpuspipe: scraped Chinese essays in, a cleaned, versioned Parquet release out."""

__version__ = "0.1.0"
