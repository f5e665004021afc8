"""The advertiser dashboard (views, forms): see ads/dashboard/urls.py."""
