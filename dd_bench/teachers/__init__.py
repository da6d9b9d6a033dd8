"""Teachers for the decoupled family: trained once per recipe and data, cached, resumable, shared by methods."""

from dd_bench.teachers.recipe import TEACHER_RECIPES, TEACHERS_CODE_VERSION, TeacherRecipe, get_recipe
from dd_bench.teachers.store import Teacher, accuracy, get_teacher, load_teacher_weights

__all__ = ["TEACHERS_CODE_VERSION", "TEACHER_RECIPES", "Teacher", "TeacherRecipe", "accuracy", "get_recipe",
           "get_teacher", "load_teacher_weights"]
