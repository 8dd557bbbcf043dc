"""File formats. This package is the only place that knows them."""
