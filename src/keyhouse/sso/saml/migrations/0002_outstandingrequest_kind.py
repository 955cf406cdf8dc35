from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("keyhouse_saml", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="outstandingrequest",
            name="kind",
            field=models.CharField(default="login", max_length=8),
        ),
    ]
