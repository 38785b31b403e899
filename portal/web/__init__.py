"""The public pages (front page, language choice), error pages and what every template can call."""
