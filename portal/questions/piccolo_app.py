"""The questions Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.questions.tables import Question, QuestionMessage

APP_CONFIG = AppConfig(
    app_name="questions",
    migrations_folder_path=str(migrations_folder("questions")),
    table_classes=[Question, QuestionMessage],
)
