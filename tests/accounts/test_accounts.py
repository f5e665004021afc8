from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.models import User
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_sign_up_log_out_and_log_in(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "New.Person@Example.com", "password1": TEST_PASSWORD, "password2": TEST_PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    assert client.get(reverse("accounts:profile")).status_code == 200

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 302

    response = client.post(reverse("account_login"), {"login": "new.person@example.com", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 200


def test_log_in_with_a_wrong_password_is_refused(client, user):
    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_profile_update_saves_age_and_instructions(client, user):
    client.force_login(user)
    response = client.post(
        reverse("accounts:profile"),
        {"display_name": " Ada ", "custom_instructions": "Answer briefly.", "age": "no"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.display_name, user.custom_instructions, user.is_adult) == ("Ada", "Answer briefly.", False)


def test_data_export_is_a_json_download_of_my_data_only(client, user, other_user):
    user.custom_instructions = "Be kind."
    user.save()
    client.force_login(user)
    assert client.get(reverse("accounts:export")).status_code == 405
    response = client.post(reverse("accounts:export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="lhama-data-')
    data = json.loads(response.content)
    assert data["format_version"] == 1
    assert data["accounts"]["email"] == user.email
    assert data["accounts"]["custom_instructions"] == "Be kind."
    assert other_user.email not in response.content.decode()


def test_delete_account_needs_the_email_and_deletes_everything(client, user, other_user):
    client.force_login(user)
    response = client.post(reverse("accounts:delete"), {"confirm_email": "someone@else.com", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post(reverse("accounts:delete"), {"confirm_email": user.email.upper(), "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert User.objects.filter(pk=other_user.pk).exists()
    assert "_auth_user_id" not in client.session


def test_admin_is_denied_to_non_staff_and_open_to_staff(client, user, staff_user):
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(staff_user)
    assert client.get("/admin/").status_code == 200
    response = client.get("/admin/accounts/user/?q=" + user.email)
    assert response.status_code == 200
    assert user.email in response.content.decode()


def test_every_model_is_registered_in_the_admin():
    from django.apps import apps
    from django.contrib import admin

    ours = {"accounts", "assistant", "ads", "billing"}
    missing = [
        f"{m._meta.app_label}.{m.__name__}"
        for m in apps.get_models()
        if m._meta.app_label in ours and not admin.site.is_registered(m)
    ]
    assert missing == []


def test_admin_url_is_configurable(settings):
    from importlib import reload

    from django.urls import clear_url_caches

    import config.urls

    settings.ADMIN_URL = "staff-only/"
    try:
        reload(config.urls)
        clear_url_caches()
        paths = [str(p.pattern) for p in config.urls.urlpatterns]
        assert "staff-only/" in paths and "admin/" not in paths
    finally:
        settings.ADMIN_URL = "admin/"
        reload(config.urls)
        clear_url_caches()


def test_user_factory_password_works():
    assert UserFactory().check_password(TEST_PASSWORD)


def test_password_reset_sends_a_link_that_sets_a_new_password(client, user, mailoutbox):
    import re

    response = client.post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [user.email]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mailoutbox[0].body).group(1)
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else link
    response = client.post(form_url, {"password1": "a brand new passphrase 7", "password2": "a brand new passphrase 7"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase 7")


def test_sign_up_sends_an_email_verification_message(client, mailoutbox):
    client.post(
        reverse("account_signup"),
        {"email": "verify.me@example.com", "password1": TEST_PASSWORD, "password2": TEST_PASSWORD},
    )
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["verify.me@example.com"]
    assert "/accounts/confirm-email/" in mailoutbox[0].body
