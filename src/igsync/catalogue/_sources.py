"""Where the catalogue's facts come from: cited by every row, so each can be checked again."""

#: Meta, "Instagram Account Insights" (IG User Insights) reference, updated 2026-06-16: both
#: logins, views = total_value with follower_type and media_product_type breakdowns, and the
#: limitations (100 followers, online_followers 30 days, top 45 demographics, empty ≠ 0).
META_REFERENCE = (
    "https://developers.facebook.com/docs/instagram-platform/api-reference/instagram-user/insights"
)
#: Graph API v18.0 changelog: audience_gender_age/locale/country/city retired (2023-12-11).
META_V18 = "https://developers.facebook.com/docs/graph-api/changelog/version18.0"
#: Graph API v21.0 changelog: the time_series forms of email_contacts, get_direction_clicks,
#: profile_views, text_message_clicks, website_clicks, phone_call_clicks retired (2025-01-08).
META_V21 = "https://developers.facebook.com/docs/graph-api/changelog/version21.0/"
#: Graph API v22.0 changelog: views introduced; impressions retired (all versions 2025-04-21).
META_V22 = "https://developers.facebook.com/docs/graph-api/changelog/version22.0"
#: Instagram Platform changelog (December 2025): `reposts` for user insights, all versions.
META_IG_CHANGELOG = "https://developers.facebook.com/docs/instagram-platform/changelog"
#: Meta's list of accepted account metrics, from its own "metric[0] must be one of" answer
#: (validated against v22.0 on 2026-06-24), with live checks of each metric as total_value.
PLINXORE = "plinxore/tap-instagram-user docs/meta_api_reference.md (live validation, 2026-06-24)"
#: follower_demographics requested with period=lifetime, metric_type=total_value and the
#: breakdowns city, country, age,gender.
AIRBYTE_LIFETIME = "airbytehq/airbyte source-instagram manifest.yaml (UserLifetimeInsights stream)"
GRAPH_API_1 = "GRAPH_API.md §1"
GRAPH_API_7 = "GRAPH_API.md §7"
